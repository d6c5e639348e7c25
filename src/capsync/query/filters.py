"""What a data query asks for: :class:`DataFilter` (Viam's ``Filter``), the page
cursor and the self-hosted organization.

A self-hosted server has one organization and one location, with the fixed ids
:data:`ORGANIZATION_ID` and :data:`LOCATION_ID`; a machine's ``robot_id`` is its
part id (an upload names only the part). A filter naming other organizations
or locations matches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ORGANIZATION_ID = "00000000-0000-4000-8000-00000000c0de"
LOCATION_ID = "capsync-location"

TagMatch = Literal["any", "tagged", "untagged"]


class QueryError(ValueError):
    """A query the server refuses as the caller's mistake (gRPC INVALID_ARGUMENT)."""


class NotFound(LookupError):
    """A named item (binary id, bounding box, dataset) that does not exist (NOT_FOUND)."""


@dataclass(frozen=True)
class DataFilter:
    """Which readings or binaries match; every given field must hold (AND).

    ``tags``: with ``tag_match="any"``, an item must carry at least one of them
    (an empty tuple means no tag filtering); ``"tagged"``/``"untagged"`` ask for
    items with some / no tags. ``start_ns`` (inclusive) and ``end_ns``
    (exclusive) bound ``time_requested``. ``bbox_labels``: binaries with a box
    carrying any of these labels. ``matches_nothing``: the filter named another
    organization or location.
    """

    part_id: str | None = None
    component_name: str | None = None
    component_type: str | None = None
    method_name: str | None = None
    tags: tuple[str, ...] = ()
    tag_match: TagMatch = "any"
    start_ns: int | None = None
    end_ns: int | None = None
    mime_types: tuple[str, ...] = ()
    bbox_labels: tuple[str, ...] = ()
    dataset_id: str | None = None
    matches_nothing: bool = False


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last item's ``time_requested`` and id."""

    time_ns: int
    id: str

    def token(self) -> str:
        return f"{self.time_ns}_{self.id}"

    @classmethod
    def parse(cls, token: str) -> Cursor | None:
        """The cursor of a ``last`` token ("" is the first page); QueryError if malformed."""
        if not token:
            return None
        time_text, sep, item_id = token.partition("_")
        if not sep or not item_id or not time_text.lstrip("-").isdigit():
            raise QueryError(f"last: {token!r} is not a page token this server returned")
        return cls(int(time_text), item_id)


@dataclass(frozen=True)
class Page:
    """One page request: ``limit`` items after ``after``, oldest first unless ``descending``."""

    limit: int | None = None
    after: Cursor | None = None
    descending: bool = False
