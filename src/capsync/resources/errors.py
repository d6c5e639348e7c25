"""Errors raised by the resource registry and the resource models."""

from __future__ import annotations

from collections.abc import Iterable


class ResourceError(Exception):
    """Base class of every error raised by :mod:`capsync.resources`."""


class UnknownModelError(ResourceError, LookupError):
    """No model is registered under this API and model name.

    The message names the API and model and lists the models known for that API.
    """

    def __init__(self, api: str, model: str, known: Iterable[str]) -> None:
        self.api = api
        self.model = model
        self.known = sorted(known)
        listing = ", ".join(self.known) if self.known else "none"
        super().__init__(
            f"unknown model {model!r} for API {api}; known models for {api}: {listing}"
        )

    def __reduce__(self) -> tuple[type[UnknownModelError], tuple[str, str, list[str]]]:
        return (type(self), (self.api, self.model, self.known))


class UnknownTypeError(ResourceError, LookupError):
    """No model at all is registered under this API: its type is likely a typo.

    The message names the type and lists the types capsync knows.
    """

    def __init__(self, api: str, known_apis: Iterable[str]) -> None:
        self.api = api
        self.known_apis = sorted(known_apis)
        namespace, kind, type_ = [*api.split(":"), "", "", ""][:3]
        known = sorted(
            a.split(":")[2] for a in self.known_apis if a.split(":")[:2] == [namespace, kind]
        )
        super().__init__(
            f"unknown {kind or 'resource'} type {type_!r} (API {api}); "
            f"known {kind} types: {', '.join(known) or 'none'}"
        )

    def __reduce__(self) -> tuple[type[UnknownTypeError], tuple[str, list[str]]]:
        return (type(self), (self.api, self.known_apis))


class ModelImportError(ResourceError, ImportError):
    """A ``python:module:Class`` model could not be imported or is not a Resource."""


class UnsupportedMethodError(ResourceError, LookupError):
    """A capture method the resource does not support.

    The message names the resource, its model and the methods it supports.
    """

    def __init__(self, resource: str, model: str, method: str, supported: Iterable[str]) -> None:
        self.resource = resource
        self.model = model
        self.method = method
        self.supported = sorted(supported)
        super().__init__(
            f"{resource} (model {model}) does not support capture method {method!r}; "
            f"supported methods: {', '.join(self.supported)}"
        )

    def __reduce__(
        self,
    ) -> tuple[type[UnsupportedMethodError], tuple[str, str, str, list[str]]]:
        return (type(self), (self.resource, self.model, self.method, self.supported))


class ResourceConfigError(ResourceError, ValueError):
    """A bad attribute or additional parameter; the message names the resource and key."""


class DataUnavailableError(ResourceError, RuntimeError):
    """The data a method reads does not exist on this machine (e.g. no Wi-Fi adapter)."""


class EndOfData(ResourceError):
    """A replaying resource reached the end of its recording and does not loop.

    Collectors log this once and stop calling the method.
    """


class NoCaptureToStore(ResourceError):
    """This call has nothing worth storing (a filtered camera saw nothing of interest).

    Collectors skip the tick quietly: neither an error nor a capture (rdk's
    ``ErrNoCaptureToStore``).
    """
