"""Capture files: writing (``CaptureStream``), reading, scanning and crash recovery."""
