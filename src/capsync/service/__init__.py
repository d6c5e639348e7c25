"""The data capture service: collectors on a schedule and the DataManager that runs them."""

from capsync.service.collector import Collector, CollectorKey, CollectorSettings, CollectorStats
from capsync.service.manager import DataManager, ServiceError

__all__ = [
    "Collector",
    "CollectorKey",
    "CollectorSettings",
    "CollectorStats",
    "DataManager",
    "ServiceError",
]
