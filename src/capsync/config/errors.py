"""The one exception type of the config loader."""

from __future__ import annotations


class ConfigError(ValueError):
    """A machine config that cannot be used.

    ``str(err)`` is a single line fit to print as is, e.g.
    ``robot.json: sensor "imu": capture_methods[0]: capture_frequency_hz must be a
    number, got "fast"``. ``message`` is that line without the file name, ``source``
    the file name (None for a config given as a dict). A command-line tool that
    stops on this error exits with ``exit_code``.
    """

    exit_code: int = 2

    def __init__(self, message: str, source: str | None = None) -> None:
        # Both go to ValueError so that the error pickles (e.g. across processes) whole.
        super().__init__(message, source)
        self.message = message
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message

    def in_file(self, source: str) -> ConfigError:
        """The same error, said of the file ``source``."""
        return ConfigError(self.message, source)
