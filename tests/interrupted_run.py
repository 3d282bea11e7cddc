"""Not part of the suite: what tests/test_interrupt.py starts in a pytest of its own and
interrupts half-way. One test holding everything a test may start: a PostgreSQL cluster
with a database (run with --database=postgresql), a redis-server, and run.py with two
uvicorn workers on that database."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.test_events import redis_url, two_workers  # noqa: F401 (redis_url: a fixture)


def test_everything_running_when_interrupted(tmp_path, redis_url):  # noqa: F811
    with two_workers(tmp_path, BOARD_BROADCAST_URL=redis_url):
        Path(os.environ["BOARD_INTERRUPT_READY"]).touch()
        time.sleep(300)  # Ctrl-C arrives here
