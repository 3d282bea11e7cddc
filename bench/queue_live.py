"""What the staff queue's live refresh costs the server, against a full queue page.

When an event says the queue changed, every staff tab with the queue open asks
/staff/queue/live with the ETag of what it shows (static/js/live.js): 304 while its view
is the same, else the parts alone. In-process (bench/profile_page.py's ASGI call, no
network), the median of 7 rounds of 100 requests each, after a warm-up:

    BOARD_DATA_DIR=/tmp/demo BOARD_SESSION=<a staff session token> python bench/queue_live.py
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import profile_page as pp  # noqa: E402

VIEW = "?status=open&assigned=all"


async def per_request(path: str, headers: dict[str, str] | None = None) -> float:
    for _ in range(30):
        await pp.call(path, headers)
    rounds = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(100):
            await pp.call(path, headers)
        rounds.append((time.perf_counter() - started) * 10)
    return statistics.median(rounds)


async def main() -> None:
    await pp.app.state.db.connect()
    try:
        page = (await pp.call(f"/staff{VIEW}")).decode()
        tag = re.search(r'data-tag="([^"]+)"', page).group(1).replace("&#34;", '"')
        full = await per_request(f"/staff{VIEW}")
        parts = await per_request(f"/staff/queue/live{VIEW}")
        unchanged = await per_request(f"/staff/queue/live{VIEW}", {"if-none-match": tag})
    finally:
        await pp.close_database(pp.app.state.db)
    print("| request | ms | share of the full page |")
    print("|---|---:|---:|")
    for label, ms in (
        ("full queue page `/staff`", full),
        ("`/staff/queue/live`, the view changed (200, the parts)", parts),
        ("`/staff/queue/live`, the view is the same (304)", unchanged),
    ):
        print(f"| {label} | {ms:.2f} | {ms / full:.0%} |")


if __name__ == "__main__":
    asyncio.run(main())
