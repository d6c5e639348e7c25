"""The model registry: (API, model) -> Resource class, extensible from Python."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .base import Resource, ResourceContext
from .errors import ModelImportError, UnknownModelError, UnknownTypeError

_R = TypeVar("_R", bound=type[Resource])

BUILTIN_FAMILY = "rdk:builtin"
PYTHON_PREFIX = "python:"

_lock = threading.Lock()
_registry: dict[str, dict[str, type[Resource]]] = {}


def api_for_type(type_: str, namespace: str = "rdk", kind: str = "component") -> str:
    """The API triplet for a config ``type``: ``sensor`` -> ``rdk:component:sensor``."""
    if not type_ or ":" in type_:
        raise ValueError(f"resource type must be a bare name such as 'sensor', got {type_!r}")
    return f"{namespace or 'rdk'}:{kind}:{type_}"


def normalize_api(api: str) -> str:
    """``rdk:component:sensor`` unchanged; a bare type name such as ``sensor`` expanded."""
    if ":" not in api:
        return api_for_type(api)
    if api.count(":") != 2 or not all(api.split(":")):
        raise ValueError(f"API must look like 'rdk:component:sensor', got {api!r}")
    return api


def normalize_model(model: str) -> str:
    """``fake`` -> ``rdk:builtin:fake``; triplets and ``python:`` paths unchanged."""
    if model.startswith(PYTHON_PREFIX):
        return model
    if ":" not in model:
        if not model:
            raise ValueError("model name must not be empty")
        return f"{BUILTIN_FAMILY}:{model}"
    if model.count(":") != 2 or not all(model.split(":")):
        raise ValueError(
            f"model must be a name ('fake'), a triplet ('acme:sensors:thermo') or "
            f"'python:module:Class', got {model!r}"
        )
    return model


def register(api: str, model: str, *, replace: bool = False) -> Callable[[_R], _R]:
    """Class decorator registering a :class:`Resource` subclass as ``model`` of ``api``.

    ``api`` is a triplet (``rdk:component:sensor``) or a type name (``sensor``); ``model``
    a bare name (``fake``, meaning ``rdk:builtin:fake``) or a triplet. Registering a
    different class under a taken name raises ``ValueError`` unless ``replace`` is true.
    """
    full_api = normalize_api(api)
    full_model = normalize_model(model)
    if full_model.startswith(PYTHON_PREFIX):
        raise ValueError(f"cannot register under a python: import path: {model!r}")

    def decorate(cls: _R) -> _R:
        if not (isinstance(cls, type) and issubclass(cls, Resource)):
            raise TypeError(f"@register({api!r}, {model!r}) needs a Resource subclass, got {cls!r}")
        with _lock:
            models = _registry.setdefault(full_api, {})
            existing = models.get(full_model)
            if existing is not None and not replace and _qualname(existing) != _qualname(cls):
                raise ValueError(
                    f"model {full_model} of {full_api} is already registered to "
                    f"{_qualname(existing)}; pass replace=True to override"
                )
            models[full_model] = cls
            if not cls.__dict__.get("api"):
                cls.api = full_api
            if not cls.__dict__.get("model"):
                cls.model = full_model
        return cls

    return decorate


def unregister(api: str, model: str) -> None:
    """Remove a registration (mainly for tests). Unknown names are ignored."""
    with _lock:
        _registry.get(normalize_api(api), {}).pop(normalize_model(model), None)


def known_models(api: str | None = None) -> dict[str, list[str]]:
    """Registered model names by API; only ``api`` when given (possibly an empty list)."""
    with _lock:
        if api is not None:
            full_api = normalize_api(api)
            return {full_api: sorted(_registry.get(full_api, {}))}
        return {a: sorted(models) for a, models in sorted(_registry.items()) if models}


def resource_class(api: str, model: str) -> type[Resource]:
    """The class serving ``model`` of ``api``.

    Raises UnknownTypeError (no model at all for ``api``), UnknownModelError or
    ModelImportError.
    """
    full_api = normalize_api(api)
    full_model = normalize_model(model)
    if full_model.startswith(PYTHON_PREFIX):
        return _import_model(full_api, full_model)
    with _lock:
        cls = _registry.get(full_api, {}).get(full_model)
        if cls is None:
            if not _registry.get(full_api):
                raise UnknownTypeError(full_api, _registry)
            raise UnknownModelError(full_api, model, _registry.get(full_api, {}))
    return cls


def build_resource(
    api: str,
    model: str,
    name: str,
    attributes: Mapping[str, Any] | None,
    context: ResourceContext | None = None,
) -> Resource:
    """Construct resource ``name`` of ``model`` for ``api`` from its config attributes."""
    full_api = normalize_api(api)
    full_model = normalize_model(model)
    cls = resource_class(full_api, full_model)
    resource = cls(name, attributes or {}, context or ResourceContext())
    if "_dispatch" not in vars(resource):
        raise TypeError(
            f"{_qualname(cls)}.__init__ must call super().__init__(name, attributes, context)"
        )
    # A class may serve several registrations: the instance reports the one it was built as.
    if resource.api != full_api:
        resource.api = full_api
    if resource.model != full_model:
        resource.model = full_model
    return resource


def _import_model(api: str, model: str) -> type[Resource]:
    path = model.removeprefix(PYTHON_PREFIX)
    module_name, sep, attr_path = path.partition(":")
    if not sep or not module_name or not attr_path:
        raise ModelImportError(f"model {model!r}: expected 'python:package.module:ClassName'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelImportError(
            f"model {model!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelImportError(
                f"model {model!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
    if not (isinstance(obj, type) and issubclass(obj, Resource)):
        raise ModelImportError(
            f"model {model!r}: {module_name}:{attr_path} is not a subclass of "
            "capsync.resources.Resource"
        )
    declared = getattr(obj, "api", "")
    if declared and declared != api:
        raise ModelImportError(
            f"model {model!r}: {module_name}:{attr_path} implements {declared}, not {api}"
        )
    return obj


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
