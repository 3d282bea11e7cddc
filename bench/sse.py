"""Many open pages on one worker: memory and CPU of 1,000 event streams, and how long a
staff answer takes to reach all of them.

    python bench/sse.py [STREAMS]        (default 1000; a fresh temporary data folder)

Starts `run.py --workers 1` on a free loopback port, registers a customer who writes one
message, and opens STREAMS connections to /events with that customer's session (the
server's cost per stream does not depend on whose it is). Reads the server's resident
memory and CPU time from /proc before and after, over a minute of idle streams
(heartbeats only), and while staff answer ten times: each answer must reach every stream,
and the time from the POST to the last stream is recorded. Prints a RESULTS.md entry.
wrk cannot hold streams open, so the client is asyncio in this process, on the same
machine.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ("bench-admin@example.com", "bench-admin-passwort")
IDLE_SECONDS = 60
ANSWERS = 10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)[1]


def submit(client: httpx.Client, form_page: str, path: str, data: dict) -> httpx.Response:
    page = client.get(form_page)
    return client.post(path, data={**data, "csrf_token": csrf(page.text)})


class Streams:
    """STREAMS raw HTTP/1.1 connections reading /events, counting message events."""

    def __init__(self, port: int, cookie: str) -> None:
        self.port = port
        self.cookie = cookie
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task] = []
        self.waiting: dict[str, asyncio.Future] = {}
        self.arrived: dict[str, int] = {}

    async def open(self, count: int) -> None:
        for index in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(
                f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {self.cookie}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            self.writers.append(writer)
            self.tasks.append(asyncio.create_task(self._read(reader)))
            if index % 100 == 99:
                await asyncio.sleep(0.05)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        kind = None
        async for raw in reader:
            line = raw.decode(errors="replace").strip()
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "message":
                found = re.search(r'"id": (\d+)', line)
                if found:
                    key = found[1]
                    self.arrived[key] = self.arrived.get(key, 0) + 1
                    if self.arrived[key] == len(self.writers) and key in self.waiting:
                        self.waiting[key].set_result(time.perf_counter())
            elif not line:
                kind = None

    def expect(self, message_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[message_id] = future
        return future

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(base: str, port: int, pid: int, count: int) -> dict:
    customer = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    staff = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    registered = submit(
        customer,
        "/register",
        "/register",
        {"name": "Bea Bench", "email": "bea@example.com", "password": "bench-passwort-1"},
    )
    assert registered.status_code == 303, registered.text[:300]
    written = submit(customer, "/inbox/new", "/inbox/new", {"body": "Viele offene Tabs."})
    number = re.search(r"/inbox/(\d+)", written.headers["location"])[1]
    logged_in = submit(staff, "/login", "/login", {"login": ADMIN[0], "password": ADMIN[1]})
    assert logged_in.status_code == 303
    cookie = "; ".join(f"{name}={value}" for name, value in customer.cookies.items())

    figures = {"memory_before": memory_mib(pid)}
    streams = Streams(port, cookie)
    started = time.perf_counter()
    await streams.open(count)
    figures["open_seconds"] = time.perf_counter() - started
    await asyncio.sleep(3)
    figures["memory_open"] = memory_mib(pid)

    cpu_before = cpu_seconds(pid)
    await asyncio.sleep(IDLE_SECONDS)
    figures["idle_cpu_percent"] = (cpu_seconds(pid) - cpu_before) / IDLE_SECONDS * 100

    latencies = []
    cpu_before = cpu_seconds(pid)
    for round_number in range(ANSWERS):
        page = await asyncio.to_thread(staff.get, f"/staff/t/{number}")
        sent = time.perf_counter()
        answered = await asyncio.to_thread(
            staff.post,
            f"/staff/t/{number}/reply",
            data={
                "body": f"Antwort {round_number}",
                "status": "pending",
                "csrf_token": csrf(page.text),
            },
        )
        message_id = answered.headers["location"].rsplit("#m", 1)[1]
        arrived = streams.expect(message_id)
        if streams.arrived.get(message_id, 0) == count:
            arrived.set_result(time.perf_counter())
        done = await asyncio.wait_for(arrived, timeout=60)
        latencies.append((done - sent) * 1000)
    figures["fanout_cpu_seconds"] = (cpu_seconds(pid) - cpu_before) / ANSWERS
    figures["fanout_ms"] = latencies
    figures["memory_after"] = memory_mib(pid)
    await streams.close()
    await asyncio.sleep(5)
    figures["memory_closed"] = memory_mib(pid)
    customer.close()
    staff.close()
    return figures


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * count + 256)), hard))
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="supportboard-sse.") as data_dir:
        env = {
            **os.environ,
            "BOARD_DATA_DIR": data_dir,
            "BOARD_ADMIN_EMAIL": ADMIN[0],
            "BOARD_ADMIN_PASSWORD": ADMIN[1],
            "BOARD_FLOOD_SECONDS": "0",
        }
        log = open(Path(data_dir) / "server.log", "w")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [sys.executable, "run.py", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            figures = asyncio.run(measure(base, port, server.pid, count))
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()
    fanout = sorted(figures["fanout_ms"])
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    cpu = next(
        (
            line.split(": ", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    print(f"## Live updates, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print(f"- command: `python bench/sse.py {count}`; one uvicorn worker, SQLite, no broker")
    print(
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; client on the same machine; commit {commit}"
    )
    print()
    print("| measured | value |")
    print("|---|---:|")
    print(f"| streams open | {count} (opened in {figures['open_seconds']:.1f} s) |")
    print(
        f"| server memory before / with streams | {figures['memory_before']:.0f} MiB / "
        f"{figures['memory_open']:.0f} MiB |"
    )
    per_stream = (figures["memory_open"] - figures["memory_before"]) * 1024 / count
    print(f"| memory per stream | {per_stream:.0f} KiB |")
    print(f"| memory after the streams closed | {figures['memory_closed']:.0f} MiB |")
    print(f"| server CPU, idle streams ({IDLE_SECONDS} s) | {figures['idle_cpu_percent']:.1f} % |")
    print(
        f"| staff answer to all {count} streams, p50 / max of {ANSWERS} | "
        f"{statistics.median(fanout):.0f} ms / {fanout[-1]:.0f} ms |"
    )
    print(f"| server CPU per answer fanned out | {figures['fanout_cpu_seconds'] * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
