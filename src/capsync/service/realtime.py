"""Scheduling of a capture thread: fine timer slack always, real-time priority on request.

* Timer slack: Linux lets a normal thread's sleeps end up to 50 µs late so
  wake-ups can be batched. A capture thread at 20 kHz (a 50 µs period) asks for
  1 ns with ``prctl(PR_SET_TIMERSLACK)``; it then sleeps most of each period
  instead of spinning it.
* ``SCHED_FIFO`` (opt-in): the thread pre-empts every normal thread, so a busy
  machine cannot make it late. It needs ``CAP_SYS_NICE`` or an ``RLIMIT_RTPRIO``
  (e.g. ``LimitRTPRIO=`` in a systemd unit); without either the thread keeps
  its normal priority and one line says why.
* The rest of the process (opt-in, ``realtime_whole_process``, while a real-time
  collector runs): the capture thread needs the GIL for every reading, and a
  normal-priority thread of this process (the flusher, the main thread, sync)
  that other processes pre-empt while it holds the GIL makes the capture thread
  wait with it. So those threads go under ``SCHED_FIFO`` too, below the
  collectors (threads they start inherit it), and the GIL's switch interval
  drops from 5 ms to ``REALTIME_SWITCH_INTERVAL_S``, which bounds how long a
  thread asking for the GIL waits before the holder must hand it over. Both are
  put back when the last real-time collector stops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading

_log = logging.getLogger("capsync.collector")

PR_SET_TIMERSLACK = 29
FINE_TIMER_SLACK_NS = 1
MAX_RT_PRIORITY = 99
REALTIME_SWITCH_INTERVAL_S = 100e-6  # the GIL switch interval while real-time collectors run

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


def others_priority(priority: int) -> int:
    """The ``SCHED_FIFO`` priority of the process's other threads: below capture and writer."""
    return max(1, priority - 2)


def _thread_ids() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the threads Python knows of
        return [t.native_id for t in threading.enumerate() if t.native_id is not None]


class ProcessShare:
    """The process's other threads under ``SCHED_FIFO`` while real-time collectors run.

    :meth:`enter` (by each real-time capture thread) raises every thread still at a
    normal policy to :func:`others_priority` and shortens the GIL switch interval;
    :meth:`leave` (as it stops) puts both back after the last one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._priority = 0
        self._saved_interval_s = 0.0
        self._policies: dict[int, int] = {}  # thread id -> the policy it had before enter

    def enter(self, priority: int) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            self._priority = others_priority(priority)
            self._saved_interval_s = sys.getswitchinterval()
            sys.setswitchinterval(min(self._saved_interval_s, REALTIME_SWITCH_INTERVAL_S))
            self._policies = {}
            for tid in _thread_ids():
                try:
                    policy = os.sched_getscheduler(tid)
                    if policy in (os.SCHED_OTHER, os.SCHED_BATCH):
                        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(self._priority))
                        self._policies[tid] = policy
                except OSError:  # the thread ended, or this one is not permitted
                    _log.debug("thread %d keeps its priority", tid, exc_info=True)

    def leave(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users:
                return
            sys.setswitchinterval(self._saved_interval_s)
            for tid in _thread_ids():
                try:
                    if (
                        os.sched_getscheduler(tid) == os.SCHED_FIFO
                        and os.sched_getparam(tid).sched_priority == self._priority
                    ):
                        policy = self._policies.get(tid, os.SCHED_OTHER)  # or started since
                        os.sched_setscheduler(tid, policy, os.sched_param(0))
                except OSError:
                    _log.debug("thread %d keeps its priority", tid, exc_info=True)
            self._policies = {}


PROCESS_SHARE = ProcessShare()
