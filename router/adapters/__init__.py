"""Departments plug in here: the adapter contract, the registry, built-in mocks."""

from router.adapters.contract import (
    Adapter,
    Notification,
    PermanentError,
    Receipt,
    RetryableError,
    Route,
)
from router.adapters.registry import ENTRY_POINT_GROUP, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "Notification",
    "PermanentError",
    "Receipt",
    "Registry",
    "RetryableError",
    "Route",
]
