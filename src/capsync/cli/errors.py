"""The one exception a CLI command raises for a user mistake."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def check_folder(flag: str, path: str | os.PathLike[str]) -> None:
    """UserError when ``path`` (given as ``flag``) exists and is not a folder."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{flag} {os.fspath(path)} is a file, not a folder", exit_code=2)


def parse_flag(flag: str, parse: Callable[[str], T], text: str) -> T:
    """``parse(text)``; its ValueError as a UserError (exit 2) naming ``flag``."""
    try:
        return parse(text)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}", exit_code=2) from None


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
