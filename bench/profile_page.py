"""Time (and optionally profile) one page in-process, without HTTP or a load tool.

    BOARD_DATA_DIR=/path/with/demo/data python bench/profile_page.py /t/6 [--profile]
    BOARD_SESSION=<session cookie value> python bench/profile_page.py /c/<slug>

Calls the ASGI app directly 200 times after a warm-up and prints the mean time per
request; `--profile` adds a cProfile listing (sorted by PSORT, default cumtime).
With BOARD_SESSION the requests carry that session cookie: a logged-in page, which
skips the guest page cache.
"""

import asyncio
import cProfile
import os
import pstats
import sys
import time

from board.app import create_app
from board.db import close_database

app = create_app()


async def call(path: str, extra_headers: dict[str, str] | None = None) -> bytes:
    plain_path, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1")]
    headers += [(name.encode(), value.encode()) for name, value in (extra_headers or {}).items()]
    if os.environ.get("BOARD_SESSION"):
        headers.append((b"cookie", f"board_session={os.environ['BOARD_SESSION']}".encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "path": plain_path,
        "raw_path": plain_path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        "app": app,
    }
    body: list[bytes] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(body)


async def main(path: str) -> None:
    await app.state.db.connect()
    try:
        for _ in range(20):
            await call(path)
        count = 200
        started = time.perf_counter()
        for _ in range(count):
            await call(path)
        elapsed = (time.perf_counter() - started) / count * 1000
        print(f"{path}: {elapsed:.2f} ms per request, {len(await call(path))} bytes")
        if "--profile" in sys.argv:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(100):
                await call(path)
            profile.disable()
            pstats.Stats(profile).sort_stats(os.environ.get("PSORT", "cumtime")).print_stats(30)
    finally:
        await close_database(app.state.db)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
