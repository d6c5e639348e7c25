"""How far the server has confirmed a capture file that takes several requests.

A small JSON record next to the file (``<file>.syncprog``) holds the byte
offset of the first record not yet confirmed and how many records came
before it, with the file's identity (inode, size, mtime) so a record never
applies to another file of the same name. It is written after each
confirmed request but the last; an upload that starts again (after a
failure, a restart, a crash) skips what was confirmed.

It is written without fsync: a record lost in a power cut only means that
some requests are sent again, and the server keeps each reading once.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from capsync.sync.files import resume_path

_log = logging.getLogger("capsync.sync")


@dataclass(frozen=True)
class ResumePoint:
    offset: int  # where the first unconfirmed record's frame starts
    records: int  # records before it


class ResumeRecord:
    """The resume record of one capture file (whose ``os.stat`` is ``st``)."""

    def __init__(self, path: Path, st: os.stat_result) -> None:
        self.path = resume_path(path)
        self._identity = [st.st_ino, st.st_size, st.st_mtime_ns]

    def load(self) -> ResumePoint | None:
        """The confirmed point, or None when there is none for this very file."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            _log.warning("ignoring unreadable resume record %s: %s", self.path, exc)
            return None
        if not isinstance(document, dict) or document.get("file") != self._identity:
            return None
        offset, records = document.get("offset"), document.get("records")
        if not isinstance(offset, int) or not isinstance(records, int) or offset < 0:
            return None
        return ResumePoint(offset, records)

    def save(self, point: ResumePoint) -> None:
        document = {"file": self._identity, "offset": point.offset, "records": point.records}
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(document))
            os.replace(temporary, self.path)
        except OSError as exc:  # only costs re-sending; the server keeps readings once
            _log.warning("cannot write resume record %s: %s", self.path, exc.strerror or exc)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            _log.warning("cannot remove resume record %s: %s", self.path, exc.strerror or exc)
