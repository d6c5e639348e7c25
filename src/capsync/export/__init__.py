"""Exports for the tools people work in: MCAP (Foxglove), Parquet, and training datasets.

Modules: :mod:`~capsync.export.mcap_export` (capture files or stored records
as MCAP), :mod:`~capsync.export.parquet_export`, :mod:`~capsync.export.dataset`.
"""
