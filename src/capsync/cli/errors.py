"""The one exception a CLI command raises for a user mistake."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
