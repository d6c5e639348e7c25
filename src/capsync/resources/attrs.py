"""Typed reads of resource attributes and additional params, with errors naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Resource


def get_int(
    res: Resource, attributes: Mapping[str, Any], key: str, default: int, *, minimum: int = 0
) -> int:
    """Integer ``key`` (default ``default``), at least ``minimum``; floats must be whole."""
    value = attributes.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise res.config_error(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def get_bool(res: Resource, attributes: Mapping[str, Any], key: str, default: bool) -> bool:
    """Boolean ``key`` (default ``default``)."""
    value = attributes.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise res.config_error(key, f"must be true or false, got {value!r}")
    return value


def get_str(
    res: Resource, attributes: Mapping[str, Any], key: str, default: str | None
) -> str | None:
    """String ``key`` (default ``default``); an empty string counts as missing."""
    value = attributes.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise res.config_error(key, f"must be a string, got {value!r}")
    return value


def require_str(res: Resource, attributes: Mapping[str, Any], key: str) -> str:
    """String ``key`` that must be present and non-empty."""
    value = get_str(res, attributes, key, None)
    if value is None:
        raise res.config_error(key, "is required")
    return value


def get_str_list(
    res: Resource, attributes: Mapping[str, Any], key: str, default: list[str]
) -> list[str]:
    """Non-empty list of distinct strings ``key`` (default ``default``)."""
    value = attributes.get(key)
    if value is None:
        return list(default)
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise res.config_error(key, f"must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise res.config_error(key, f"has duplicate names: {value!r}")
    return list(value)
