"""Scheduling of a capture thread: fine timer slack always, real-time priority on request.

* Timer slack: Linux lets a normal thread's sleeps end up to 50 µs late so
  wake-ups can be batched. A capture thread at 20 kHz (a 50 µs period) asks for
  1 ns with ``prctl(PR_SET_TIMERSLACK)``; it then sleeps most of each period
  instead of spinning it.
* ``SCHED_FIFO`` (opt-in): the thread pre-empts every normal thread, so a busy
  machine cannot make it late. It needs ``CAP_SYS_NICE`` or an ``RLIMIT_RTPRIO``
  (e.g. ``LimitRTPRIO=`` in a systemd unit); without either the thread keeps
  its normal priority and one line says why.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

_log = logging.getLogger("capsync.collector")

PR_SET_TIMERSLACK = 29
FINE_TIMER_SLACK_NS = 1
MAX_RT_PRIORITY = 99

_warned = threading.Event()


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def set_fine_timer_slack() -> bool:
    """Ask for 1 ns of timer slack on the calling thread; False where that is not possible."""
    if _LIBC is None or not hasattr(_LIBC, "prctl"):
        return False
    return bool(_LIBC.prctl(PR_SET_TIMERSLACK, FINE_TIMER_SLACK_NS, 0, 0, 0) == 0)


def check_priority(priority: int) -> int:
    """Refuse a priority outside 0 (off) .. 99."""
    if not 0 <= priority <= MAX_RT_PRIORITY:
        raise ValueError(
            f"real-time priority must be 1..{MAX_RT_PRIORITY} (0: off), got {priority}"
        )
    return priority


def make_realtime(priority: int) -> str | None:
    """Put the calling thread under ``SCHED_FIFO`` at ``priority``; None, or why not."""
    check_priority(priority)
    if not hasattr(os, "sched_setscheduler"):
        return "real-time priority is not available on this platform"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        return (
            f"real-time priority {priority} not permitted (needs CAP_SYS_NICE or "
            "LimitRTPRIO=); capturing at normal priority"
        )
    except OSError as exc:
        return (
            f"real-time priority {priority} refused ({exc.strerror}); capturing at normal priority"
        )
    return None


def tune_capture_thread(label: str, priority: int) -> bool:
    """Fine timer slack and, when ``priority`` > 0, ``SCHED_FIFO``; True if real-time.

    The refusal is logged once per process, not once per collector.
    """
    set_fine_timer_slack()
    if priority <= 0:
        return False
    why_not = make_realtime(priority)
    if why_not is None:
        return True
    if not _warned.is_set():
        _warned.set()
        _log.warning("%s: %s", label, why_not)
    return False


def tune_writer_thread(priority: int) -> bool:
    """``SCHED_FIFO`` at ``priority`` for a collector's writer, silently (the capture thread
    already said whether real-time priority is permitted)."""
    return make_realtime(priority) is None
