"""Ctrl-C stops the README's test command within seconds and leaves nothing running.

A pytest of its own runs tests/interrupted_run.py (a test that holds a PostgreSQL
cluster, a redis-server and run.py with two workers) with this folder as its TMPDIR, as
the README's command does: on several workers, through pytest-xdist. Once everything is
up, it gets SIGINT, as the terminal sends it to the whole foreground process group (or
SIGTERM to the group, as a CI runner's timeout does). A process left behind still
mentions this folder: in its command line (the cluster's data folder, redis's --dir) or
in its environment (TMPDIR, BOARD_DATA_DIR)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def processes_mentioning(text: str) -> dict[int, str]:
    """Process id and command line of every process but this one that mentions `text`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if text.encode() in command or text.encode() in environment:
            found[int(entry.name)] = command.replace(b"\0", b" ").decode(errors="replace")
    return found


@pytest.mark.parametrize(
    ("workers", "stop"),
    [("2", signal.SIGINT), ("0", signal.SIGINT), ("2", signal.SIGTERM)],
    ids=["ctrl-c", "ctrl-c-one-process", "sigterm"],
)
def test_ctrl_c_stops_the_run_within_seconds_and_leaves_no_process(tmp_path, workers, stop):
    # Not under tmp_path, whose 0700 parents keep the postgres user out.
    folder = Path(tempfile.mkdtemp(prefix="board-interrupt-"))
    folder.chmod(0o755)
    ready = folder / "ready"
    log = (tmp_path / "pytest.log").open("w")
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests/interrupted_run.py", "--database=postgresql"]
        + ["-n", workers, "-p", "no:cacheprovider"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TMPDIR": str(folder), "BOARD_INTERRUPT_READY": str(ready)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    try:
        wait_for(lambda: ready.exists() or run.poll() is not None, timeout=120)
        assert ready.exists(), (tmp_path / "pytest.log").read_text()
        assert processes_mentioning(str(folder)), "nothing to interrupt: the check sees nothing"
        os.killpg(run.pid, stop)
        started = time.monotonic()
        run.wait(timeout=60)
        took = time.monotonic() - started
        output = (tmp_path / "pytest.log").read_text()
        assert took < 10, output
        assert "KeyboardInterrupt" in output, output
        deadline = time.monotonic() + 3  # what was told to stop may take a moment to go
        while (left := processes_mentioning(str(folder))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == {}, output
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        for pid in processes_mentioning(str(folder)):  # a failed run leaves the machine clean
            os.kill(pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
