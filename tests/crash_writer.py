"""A capture process for the crash tests: a 10 kHz counter sensor, killed at random.

    python crash_writer.py CAPTURE_DIR RUN_ID

Every ~50 ms it completes the open file and prints the count of readings that
were handed to the OS before that moment: those must survive a SIGKILL.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Mapping
from typing import Any

import capsync
from capsync.resources import Resource, capture_method, register


@register("rdk:component:sensor", "test:crash:counter")
class RunCounter(Resource):
    """Readings {"run": RUN_ID, "n": 1, 2, 3, ...}."""

    def __init__(self, name: str, attributes: Mapping[str, Any], context: Any) -> None:
        super().__init__(name, attributes, context)
        self._run = int(attributes["run"])
        self._n = itertools.count(1)

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"run": self._run, "n": next(self._n)}


def main() -> None:
    capture_dir, run = sys.argv[1], int(sys.argv[2])
    config = {
        "components": [
            {
                "name": "counter",
                "type": "sensor",
                "model": "test:crash:counter",
                "attributes": {"run": run},
                "service_configs": [
                    {
                        "type": "data_manager",
                        "attributes": {
                            "capture_methods": [
                                {
                                    "method": "Readings",
                                    "capture_frequency_hz": 10_000,
                                    "capture_queue_size": 100_000,
                                }
                            ]
                        },
                    }
                ],
            }
        ],
        "services": [
            {
                "name": "dm",
                "type": "data_manager",
                "attributes": {
                    "capture_dir": capture_dir,
                    "sync_disabled": True,
                    "maximum_capture_file_size_bytes": 65536,
                },
            }
        ],
    }
    manager = capsync.DataManager.from_config(config, fsync_interval_s=0.05).start()
    print("started", flush=True)
    while True:
        time.sleep(0.05)  # the cadence of the status lines (the test kills between them)
        written = manager.stats()["counter/Readings"].records_written
        manager.flush_to_capture()  # everything appended before this is now on the OS side
        print(written, flush=True)


if __name__ == "__main__":
    main()
