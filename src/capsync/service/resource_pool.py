"""The resources a data manager has built: those its collectors capture from, and those
built only to be asked something (the selective syncer's sensor, a vision service's
camera). One resource per (api, name); rebuilt when its construction changes."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from capsync._log import RateLimitedLog
from capsync.config import CaptureTarget, DataManagerConfig, MachineConfig, ResourceConfig
from capsync.config.model import split_resource_name
from capsync.resources import (
    ModelImportError,
    Resource,
    ResourceContext,
    UnknownModelError,
    UnknownTypeError,
    build_resource,
)

_log = logging.getLogger("capsync.manager")

DEPENDENCY_LOCK_TIMEOUT_S = 0.5
Ident = tuple[str, str]  # (api, name)


class ResourcePool:
    """Built resources; ``lock`` is the data manager's (held while it reconfigures)."""

    def __init__(self, config: Callable[[], MachineConfig], lock: threading.RLock) -> None:
        self._config = config
        self._lock = lock
        self._resources: dict[Ident, Resource] = {}  # what collectors capture from
        self._configs: dict[Ident, ResourceConfig] = {}
        # Resources built only to be asked something (the selective syncer sensor).
        self._others: dict[Ident, Resource] = {}
        self._log = RateLimitedLog(_log, 30.0)

    def resource(self, name: str) -> Resource | None:
        """The resource ``name`` (or ``api/name``) of the config, built if no collector uses it.

        None when the config has no such resource or it cannot be built (logged).
        """
        split = split_resource_name(name)
        api, short = split if split is not None else (None, name)
        with self._lock:
            for table in (self._resources, self._others):
                for (res_api, res_name), resource in table.items():
                    if res_name == short and api in (None, res_api):
                        return resource
            machine = self._config()
            for config in (*machine.components, *machine.services):
                if config.name == short and api in (None, config.api):
                    context = self._context()
                    try:
                        resource = build_resource(
                            config.api, config.model, config.name, config.attributes, context
                        )
                    except Exception as exc:
                        self._log.log(logging.ERROR, f"cannot build {name!r}: {exc}")
                        return None
                    self._others[(config.api, config.name)] = resource
                    return resource
        return None

    def for_target(self, target: CaptureTarget) -> Resource:
        """The resource a capture target captures from, built on first use."""
        assert target.resource is not None
        config = target.resource
        ident = (config.api, config.name)
        resource = self._resources.get(ident)
        if resource is None and target.remote is not None:
            from capsync.remote import build_remote_resource

            resource = build_remote_resource(config, self._context())
        if resource is None:
            try:
                resource = build_resource(
                    config.api, config.model, config.name, config.attributes, self._context()
                )
            except (UnknownTypeError, UnknownModelError, ModelImportError) as exc:
                # Same type for callers that catch it; the message now names the component.
                exc.args = (f'{config.type} "{config.name}": {exc}',)
                raise
            self._resources[ident] = resource
            self._configs[ident] = config
        return resource

    def config_changed(self, target: CaptureTarget) -> bool:
        """True when ``target``'s resource was built from another construction."""
        old = _construction(self._configs.get((target.api, target.resource_name)))
        return old not in (None, _construction(target.resource))

    def forget(self, idents: Iterable[Ident]) -> None:
        """Close these resources (they are rebuilt on next use)."""
        for ident in idents:
            self._configs.pop(ident, None)
            resource = self._resources.pop(ident, None)
            if resource is not None:
                resource.close()

    def keep_only(self, used: set[Ident]) -> None:
        """Close the capture resources no collector uses any more."""
        self.forget([ident for ident in self._resources if ident not in used])

    def close_others(self) -> None:
        for resource in self._others.values():
            resource.close()
        self._others.clear()

    def close(self) -> None:
        self.forget(list(self._resources))
        self.close_others()

    def _context(self) -> ResourceContext:
        machine = self._config()
        source = machine.source_path
        capture_dir = (machine.data_manager or DataManagerConfig()).capture_dir
        return ResourceContext(
            capture_dir=str(Path(capture_dir)),
            config_dir=str(Path(source).parent) if source else None,
            resolve=self._dependency,
        )

    def _dependency(self, name: str) -> Resource:
        """Another resource for a resource (a vision service's camera). Never waits long
        for the lock: a capture thread asking while the config changes must not block the
        reconfiguration that is joining it."""
        if not self._lock.acquire(timeout=DEPENDENCY_LOCK_TIMEOUT_S):
            raise LookupError(f"resource {name!r}: busy reconfiguring, try again")
        try:
            resource = self.resource(name)
        finally:
            self._lock.release()
        if resource is None:
            raise LookupError(f"no resource {name!r} in the config (or it cannot be built)")
        return resource


def _construction(config: ResourceConfig | None) -> ResourceConfig | None:
    """What a resource is built from: its config without the capture methods."""
    return None if config is None else dataclasses.replace(config, capture_methods=())
