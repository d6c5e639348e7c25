"""The bytes a sync pass keeps in flight: small files many at once, big ones a few."""

from __future__ import annotations

import threading
import time

import pytest

from capsync.sync.in_flight import ByteBudget

pytestmark = pytest.mark.wire_independent

KIB = 1024


@pytest.mark.parametrize(("size", "most"), [(256 * KIB, 12), (768 * KIB, 4), (5000 * KIB, 1)])
def test_holders_never_exceed_the_budget_and_one_big_holder_goes_alone(
    size: int, most: int
) -> None:
    budget = ByteBudget(3 * 1024 * KIB)
    lock = threading.Lock()
    now, peak = [0], [0]
    start = threading.Barrier(16)

    def lane() -> None:
        start.wait()
        for _ in range(3):
            with budget.hold(size):
                with lock:
                    now[0] += 1
                    peak[0] = max(peak[0], now[0])
                time.sleep(0.002)  # an upload in flight, so that the lanes overlap
                with lock:
                    now[0] -= 1

    threads = [threading.Thread(target=lane) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert 1 <= peak[0] <= most
    assert budget.held_bytes == 0
