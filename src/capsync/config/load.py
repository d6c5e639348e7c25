"""``load_config``: a machine config JSON (file or dict) to a checked ``MachineConfig``."""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from ._capture import parse_service_configs
from ._datamanager import parse_data_manager
from ._reader import ObjectReader, Warnings, is_object, render
from .errors import ConfigError
from .model import (
    DEFAULT_APP_ADDRESS,
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_NAMESPACE,
    CloudConfig,
    Kind,
    MachineConfig,
    RemoteConfig,
    ResourceConfig,
    SyncConfig,
)

logger = logging.getLogger("capsync.config")

DATA_MANAGER_API = "rdk:service:data_manager"

# Top-level sections viam-server knows and capsync has no use for: accepted silently.
VIAM_TOP_LEVEL_KEYS = frozenset(
    {
        "agent", "agent_config", "auth", "debug", "disable_log_deduplication",
        "disable_partial_start", "enable_web_profile", "fragment_mods", "fragments",
        "global_log_configuration", "jobs", "log", "maintenance", "modules", "network",
        "overwrite_fragment_status", "packages", "processes", "revision", "tracing",
    }
)  # fmt: skip
# Resource keys viam-server knows and capsync has no use for.
_IGNORED_RESOURCE_KEYS = ("frame", "log_configuration")
_IGNORED_REMOTE_KEYS = (
    "connection_check_interval", "frame", "managed_by", "prefix", "reconnect_interval",
)  # fmt: skip
ROBOT_LOCATION_SECRET = "robot-location-secret"


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> MachineConfig:
    """Load and check a machine config.

    ``source`` is a path to a JSON file or an already-parsed config. Raises
    ``ConfigError`` (one line, naming the file, the resource, the method and the key)
    for anything unusable. Unknown keys do not fail: they are returned in
    ``MachineConfig.warnings`` and logged once through the ``capsync.config`` logger.
    """
    if isinstance(source, Mapping):
        return _build(source, None)
    path = os.fspath(source)
    data = _read_json(path)
    try:
        return _build(data, path)
    except ConfigError as err:
        raise err.in_file(path) from None


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as err:
        raise ConfigError(f"cannot read the config: {err.strerror or err}", path) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}", path
        ) from None


def _build(data: Any, path: str | None) -> MachineConfig:
    if not is_object(data):
        raise ConfigError(f"the config must be a JSON object, got {render(data)}")
    warnings = Warnings()
    top = ObjectReader(data, "", warnings)
    components = _resources(top, "components", "component")
    services = _resources(top, "services", "service")
    remotes = tuple(_remote(top, i, item) for i, item in enumerate(top.array("remotes") or ()))
    data_managers = [s for s in services if s.api == DATA_MANAGER_API]
    if len(data_managers) > 1:
        names = ", ".join(render(s.name) for s in data_managers)
        raise ConfigError(f"services: only one data_manager service is supported, got {names}")
    data_manager = parse_data_manager(data_managers[0], warnings) if data_managers else None
    cloud = _cloud(top.child("cloud"))
    sync = _sync(top.child("sync"))
    top.finish(ignored=VIAM_TOP_LEVEL_KEYS)
    lines = warnings.lines()
    for line in lines:
        logger.warning("%s%s", f"{path}: " if path else "", line)
    return MachineConfig(
        components=components,
        services=services,
        remotes=remotes,
        data_manager=data_manager,
        cloud=cloud,
        sync=sync,
        source_path=os.path.abspath(path) if path else None,
        warnings=lines,
    )


def _resources(top: ObjectReader, key: str, kind: Kind) -> tuple[ResourceConfig, ...]:
    resources: list[ResourceConfig] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(top.array(key) or ()):
        resource = _resource(top, f"{key}[{i}]", item, kind)
        if (resource.api, resource.name) in seen:
            raise ConfigError(
                f"{key}[{i}]: name {render(resource.name)} is used twice for {resource.api}"
            )
        seen.add((resource.api, resource.name))
        resources.append(resource)
    return tuple(resources)


def _resource(top: ObjectReader, where: str, item: Any, kind: Kind) -> ResourceConfig:
    if not is_object(item):
        raise ConfigError(f"{where} must be an object, got {render(item)}")
    r = ObjectReader(item, where, top.warnings)
    name = _name(r)
    r.where = f'{where} "{name}"'
    type_, namespace = _type_and_namespace(r, kind)
    # From here on the resource is named as viam names it: sensor "imu".
    r.where = f'{type_} "{name}"'
    resource = ResourceConfig(
        name=name,
        type=type_,
        kind=kind,
        namespace=namespace,
        model=r.text("model") or "",
        attributes=copy.deepcopy(dict(r.mapping("attributes") or {})),
        depends_on=r.strings("depends_on") or (),
        capture_methods=parse_service_configs(r.array("service_configs"), r.where, top.warnings),
    )
    r.finish(ignored=_IGNORED_RESOURCE_KEYS)
    return resource


def _name(r: ObjectReader) -> str:
    """A resource name; it becomes a folder name, so no path separators."""
    name = r.required_text("name")
    if "/" in name or "\\" in name or name in (".", ".."):
        r.bad("name", 'a name without "/" or "\\"', name)
    return name


def _type_and_namespace(r: ObjectReader, kind: Kind) -> tuple[str, str]:
    """From ``type`` and ``namespace``, or from ``api`` (``rdk:component:sensor``)."""
    type_ = r.text("type")
    namespace = r.text("namespace")
    api = r.text("api")
    if api is None:
        if not type_:
            r.fail("type", "is required")
        return type_, namespace or DEFAULT_NAMESPACE
    parts = api.split(":")
    if len(parts) != 3 or not all(parts):
        r.bad("api", f'an API such as "rdk:{kind}:sensor"', api)
    api_namespace, api_kind, api_type = parts
    if api_kind != kind:
        r.bad("api", f"a {kind} API", api)
    if type_ and type_ != api_type:
        r.fail("type", f"{render(type_)} does not match api {render(api)}")
    if namespace and namespace != api_namespace:
        r.fail("namespace", f"{render(namespace)} does not match api {render(api)}")
    return api_type, api_namespace


def _remote(top: ObjectReader, i: int, item: Any) -> RemoteConfig:
    where = f"remotes[{i}]"
    if not is_object(item):
        raise ConfigError(f"{where} must be an object, got {render(item)}")
    r = ObjectReader(item, where, top.warnings)
    name = _name(r)
    r.where = f'remote "{name}"'
    entity, cred_type, payload = _remote_auth(r.child("auth"))
    secret = r.text("secret") or ""
    if secret and not payload:  # rdk: the secret becomes robot-location-secret credentials
        cred_type, payload = ROBOT_LOCATION_SECRET, secret
    ca_file = r.text("ca_file")
    remote = RemoteConfig(
        name=name,
        address=r.text("address") or "",
        insecure=bool(r.flag("insecure")),
        capture_methods=parse_service_configs(
            r.array("service_configs"), r.where, top.warnings, remote=True
        ),
        auth_entity=entity,
        auth_type=cred_type,
        auth_payload=payload,
        ca_file=os.path.expanduser(ca_file) if ca_file else None,
    )
    r.finish(ignored=_IGNORED_REMOTE_KEYS)
    return remote


def _remote_auth(r: ObjectReader | None) -> tuple[str, str, str]:
    """A remote's ``auth``: (entity, credentials type, payload); all "" when absent."""
    if r is None:
        return "", "", ""
    entity = r.text("entity") or ""
    credentials = r.child("credentials")
    r.finish(ignored=("external_auth_address", "external_auth_to_entity", "managed"))
    if credentials is None:
        return entity, "", ""
    cred_type = credentials.text("type") or ""
    payload = credentials.text("payload") or ""
    credentials.finish()
    if payload and not cred_type:
        credentials.fail("type", 'is required with a payload (e.g. "api-key")')
    return entity, cred_type, payload


def _cloud(r: ObjectReader | None) -> CloudConfig | None:
    """viam-server's ``cloud`` section; its many other keys are viam's, not reported."""
    if r is None:
        return None
    return CloudConfig(
        id=r.required_text("id"),
        secret=r.text("secret") or "",
        app_address=r.text("app_address") or DEFAULT_APP_ADDRESS,
    )


def _sync(r: ObjectReader | None) -> SyncConfig | None:
    """capsync's own ``sync`` section."""
    if r is None:
        return None
    ca_file = r.text("ca_file")
    config = SyncConfig(
        address=r.text("address") or None,
        api_key_id=r.text("api_key_id") or None,
        api_key=r.text("api_key") or None,
        insecure=bool(r.flag("insecure")),
        ca_file=os.path.expanduser(ca_file) if ca_file else None,
        part_id=r.text("part_id") or None,
        max_backoff_s=r.number("max_backoff_s") or DEFAULT_MAX_BACKOFF_S,
    )
    if (config.api_key_id is None) != (config.api_key is None):
        missing = "api_key" if config.api_key is None else "api_key_id"
        r.fail(missing, "is required when api_key_id or api_key is given")
    r.finish()
    return config
