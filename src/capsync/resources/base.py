"""The Resource base class every model subclasses, and the context it is built with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import ResourceConfigError, UnsupportedMethodError
from .results import CaptureResult

CaptureFn = Callable[[Any, Mapping[str, Any]], CaptureResult]
_F = TypeVar("_F", bound=CaptureFn)

_METHOD_MARK = "__capsync_capture_method__"
_EMPTY: Mapping[str, Any] = {}


def capture_method(method: str) -> Callable[[_F], _F]:
    """Mark a ``(self, additional_params) -> CaptureResult`` function as capture ``method``.

    Example::

        class Thermo(Resource):
            @capture_method("Readings")
            def readings(self, params):
                return {"celsius": 21.5}
    """

    def mark(fn: _F) -> _F:
        setattr(fn, _METHOD_MARK, method)
        return fn

    return mark


@dataclass(frozen=True, slots=True)
class ResourceContext:
    """Where a resource lives: the capture folder and the folder of its config file.

    ``resolve`` finds another resource of the machine by name (``cam`` or
    ``rdk:component:camera/cam``), e.g. the camera a vision service reads; it
    raises ``LookupError`` when there is none (or while the machine reconfigures).
    """

    capture_dir: str | None = None
    config_dir: str | None = None
    resolve: Callable[[str], Resource] | None = field(default=None, compare=False)

    def dependency(self, name: str) -> Resource:
        """The resource ``name`` of this machine; ``LookupError`` when unavailable."""
        if self.resolve is None:
            raise LookupError(f"resource {name!r}: no other resources are available here")
        return self.resolve(name)

    def resolve_path(self, path: str) -> Path:
        """``path`` with ``~`` expanded; a relative path is taken from ``config_dir``."""
        p = Path(path).expanduser()
        if not p.is_absolute() and self.config_dir:
            p = Path(self.config_dir).expanduser() / p
        return p


class Resource:
    """A component or service whose methods can be captured.

    Subclasses mark capture methods with :func:`capture_method`; every resource answers
    ``DoCommand`` (override :meth:`do_command`). ``api`` and ``model`` are set by
    :func:`capsync.resources.register` (or by the class itself).
    """

    api: str = ""
    model: str = ""
    # capture method name -> attribute name, collected from the class and its bases.
    _capture_methods: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        methods: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                method = getattr(value, _METHOD_MARK, None)
                if isinstance(method, str):
                    methods[method] = attr
        cls._capture_methods = methods

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        self.name = name
        self.attributes: Mapping[str, Any] = dict(attributes or {})
        self.context = context
        self._dispatch: dict[str, Callable[[Mapping[str, Any]], CaptureResult]] = {
            method: getattr(self, attr) for method, attr in self._capture_methods.items()
        }

    def methods(self) -> frozenset[str]:
        """The capture method names this resource supports (always including DoCommand)."""
        return frozenset(self._dispatch)

    def capture(
        self, method: str, additional_params: Mapping[str, Any] | None = None
    ) -> CaptureResult:
        """Call capture ``method`` with its ``additional_params`` and return the result."""
        try:
            fn = self._dispatch[method]
        except KeyError:
            raise UnsupportedMethodError(
                self.describe(), self.model, method, self._dispatch
            ) from None
        return fn(_EMPTY if additional_params is None else additional_params)

    def do_command(self, command: dict[str, Any]) -> dict[str, Any]:
        """Answer a DoCommand. The default echoes the command back."""
        return dict(command)

    def close(self) -> None:
        """Release files or devices the resource holds. Safe to call twice."""

    def describe(self) -> str:
        """``sensor 'temp'``: the resource's type and name, for messages."""
        kind = self.api.rsplit(":", 1)[-1] if self.api else type(self).__name__
        return f"{kind} {self.name!r}"

    def drop_methods(self, *methods: str) -> None:
        """Withdraw capture methods this instance cannot serve (e.g. no files of a kind)."""
        for method in methods:
            self._dispatch.pop(method, None)

    def config_error(self, key: str, problem: str) -> ResourceConfigError:
        """An error naming this resource, its model and the offending key."""
        model = self.model or type(self).__qualname__
        return ResourceConfigError(f"{self.describe()} (model {model}): {key!r} {problem}")

    @capture_method("DoCommand")
    def _capture_do_command(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # viam's collectors read the command from "docommand_input"; "command" is accepted too.
        command = params.get("docommand_input", params.get("command"))
        if command is None:
            command = {}
        if not isinstance(command, Mapping):
            raise self.config_error(
                "docommand_input", f"must be an object, got {type(command).__name__}"
            )
        return self.do_command(dict(command))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.api} {self.model} {self.name!r}>"


Resource._capture_methods = {"DoCommand": "_capture_do_command"}
