"""Small helpers shared by MongoDB capture and the MongoDB store (no capsync imports).

pymongo is an optional extra (``pip install 'capsync[mongo]'``): this module
imports it only inside its functions, so that :func:`require_pymongo` can say
what is missing in one line before any MongoDB feature starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.errors import PyMongoError

MONGO_EXTRA_HINT = "pip install 'capsync[mongo]'"


class MissingExtraError(ImportError):
    """An optional dependency a feature needs is not installed; the message says how to fix it."""


def require_pymongo() -> None:
    """Raise :class:`MissingExtraError` (one line) unless pymongo can be imported."""
    try:
        import pymongo  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            f"MongoDB support needs pymongo, which is not installed: {MONGO_EXTRA_HINT}"
        ) from None


_USERINFO = re.compile(r"^(mongodb(?:\+srv)?://)([^@/?#]*)@")


def redact_uri(uri: str) -> str:
    """``uri`` with its password hidden, for logs and messages."""

    def hide(match: re.Match[str]) -> str:
        user, sep, _ = match.group(2).partition(":")
        return f"{match.group(1)}{user}{':***' if sep else ''}@"

    return _USERINFO.sub(hide, uri, count=1)


def check_uri(uri: str) -> None:
    """Raise :class:`ValueError` unless ``uri`` is a usable MongoDB connection string.

    A ``mongodb+srv://`` URI is only checked for its scheme: the rest needs a DNS lookup.
    """
    require_pymongo()
    from pymongo import uri_parser
    from pymongo.errors import ConfigurationError

    if uri.startswith("mongodb+srv://"):
        return
    if not uri.startswith("mongodb://"):
        raise ValueError(
            f"a MongoDB URI starts with mongodb:// or mongodb+srv://, got {redact_uri(uri)!r}"
        )
    try:
        uri_parser.parse_uri(uri)
    except (ConfigurationError, ValueError) as exc:
        raise ValueError(f"bad MongoDB URI {redact_uri(uri)!r}: {exc}") from None


def _uri_has_option(uri: str, name: str) -> bool:
    query = uri.partition("?")[2].lower()
    return any(part.partition("=")[0] == name.lower() for part in re.split("[&;]", query))


def client_options(uri: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` minus the options ``uri`` sets itself: the URI wins."""
    return {key: value for key, value in defaults.items() if not _uri_has_option(uri, key)}


def short_error(exc: BaseException, limit: int = 200) -> str:
    """A pymongo error's message without the topology description it may carry."""
    text = str(exc).split(", Timeout:", 1)[0].split(", Topology Description:", 1)[0]
    text = text.split(" (configured timeouts:", 1)[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_transient(exc: PyMongoError) -> bool:
    """True for errors that mean "MongoDB unreachable or too slow now": worth a retry."""
    from pymongo.errors import ConnectionFailure

    return isinstance(exc, ConnectionFailure) or bool(getattr(exc, "timeout", False))
