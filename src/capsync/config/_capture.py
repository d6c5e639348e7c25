"""Parsing of ``service_configs[]`` and the capture methods inside them (SPEC §1)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ._reader import ObjectReader, Warnings, is_object, render
from .errors import ConfigError
from .model import (
    DEFAULT_CAPTURE_BUFFER_SIZE_BYTES,
    DEFAULT_CAPTURE_QUEUE_SIZE,
    CaptureMethodConfig,
    RetentionPolicy,
    split_resource_name,
)

DATA_MANAGER = "data_manager"
# Keys viam-server writes into capture methods that capsync has no use for.
_IGNORED_METHOD_KEYS = ("model", "type")


def parse_service_configs(
    value: Sequence[Any] | None, where: str, warnings: Warnings, *, remote: bool = False
) -> tuple[CaptureMethodConfig, ...]:
    """The capture methods of every ``data_manager`` entry of ``service_configs``.

    ``where`` names the owner (``sensor "imu"``); entries of other types are skipped.
    A remote's capture methods must each name their resource (``name``).
    """
    if not value:
        return ()
    dm_entries: list[tuple[int, Mapping[str, Any]]] = []
    for j, entry in enumerate(value):
        if not is_object(entry):
            raise ConfigError(
                f"{where}: service_configs[{j}] must be an object, got {render(entry)}"
            )
        kind = ObjectReader(entry, where, warnings, f"service_configs[{j}].").required_text("type")
        if kind == DATA_MANAGER:  # other services' entries are theirs to read
            dm_entries.append((j, entry))
    methods: list[CaptureMethodConfig] = []
    # (resource name for a remote, method) -> where it was first configured, enabled.
    enabled: dict[tuple[str, str], str] = {}
    for j, entry in dm_entries:
        reader = ObjectReader(entry, where, warnings, f"service_configs[{j}].")
        attributes = reader.child("attributes")
        reader.finish(ignored=("type",))
        if attributes is None:
            continue
        default_retention = _retention(attributes.child("retention_policy"))
        listed = attributes.array("capture_methods") or ()
        attributes.finish()
        # With one data_manager entry (the usual case) say capture_methods[i], as viam does.
        prefix = "" if len(dm_entries) == 1 else f"service_configs[{j}]."
        for i, item in enumerate(listed):
            method_where = f"{where}: {prefix}capture_methods[{i}]"
            if not is_object(item):
                raise ConfigError(f"{method_where} must be an object, got {render(item)}")
            method_reader = ObjectReader(item, method_where, warnings)
            method = _capture_method(method_reader, default_retention, remote=remote)
            _check_not_twice(enabled, method, where, f"{prefix}capture_methods[{i}]")
            methods.append(method)
    return tuple(methods)


def _check_not_twice(
    enabled: dict[tuple[str, str], str], method: CaptureMethodConfig, where: str, index: str
) -> None:
    """One resource captures a method once. viam-server keys its collectors by resource,
    method and additional_params, so a second entry with the same params silently
    replaces the first; capsync names both entries instead (its capture folder, stats
    and collector key are per resource and method)."""
    if not method.enabled:
        return
    key = (method.name, method.method)
    first = enabled.setdefault(key, index)
    if first != index:
        resource = f"{where} ({method.name})" if method.name else where
        raise ConfigError(
            f"{resource}: {index} captures {method.method} again (already {first}); "
            "capture a method once per resource, or disable one of them"
        )


def _capture_method(
    r: ObjectReader, default_retention: RetentionPolicy | None, *, remote: bool
) -> CaptureMethodConfig:
    method = r.required_text("method")
    hz = r.required_number("capture_frequency_hz", minimum=None)
    if hz < 0:  # viam's rule: <= 0 disables the method; 0 is the usual way, < 0 likely a slip
        r.warnings.add(
            f"{r.where} ({method}): capture_frequency_hz {hz:g} is negative: the method is disabled"
        )
    params = r.mapping("additional_params") or {}
    for key in params:
        if not isinstance(key, str):
            r.bad("additional_params", "an object with string keys", dict(params))
    queue_size = r.integer("capture_queue_size") or DEFAULT_CAPTURE_QUEUE_SIZE
    buffer_size = r.integer("capture_buffer_size") or DEFAULT_CAPTURE_BUFFER_SIZE_BYTES
    retention = _retention(r.child("retention_policy")) or default_retention
    cache_size_kb = r.number("cache_size_kb")
    if cache_size_kb is not None and cache_size_kb * 1000 < 1000:
        r.bad("cache_size_kb", "at least 1 (KB)", r.raw("cache_size_kb"))
    name = (r.required_text("name") if remote else r.text("name")) or ""
    if remote and split_resource_name(name) is None:
        r.bad("name", 'a full resource name such as "rdk:component:board/my-esp32"', name)
    config = CaptureMethodConfig(
        method=method,
        capture_frequency_hz=hz,
        additional_params=copy.deepcopy(dict(params)),
        disabled=bool(r.flag("disabled")),
        tags=r.tags("tags"),
        capture_queue_size=queue_size,
        capture_buffer_size=buffer_size,
        retention_policy=retention,
        cache_size_kb=cache_size_kb,
        name=name,
    )
    r.finish(ignored=_IGNORED_METHOD_KEYS)
    return config


def _retention(r: ObjectReader | None) -> RetentionPolicy | None:
    if r is None:
        return None
    policy = RetentionPolicy(
        days=r.integer("days"),
        binary_limit_gb=r.number("binary_limit_gb"),
        tabular_limit_gb=r.number("tabular_limit_gb"),
    )
    r.finish()
    return policy
