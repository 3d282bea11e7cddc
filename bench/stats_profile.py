"""Times the statistics in-process on the database in BOARD_DATA_DIR (bench/stats.sh).

Prints a Markdown table: building the calendar from nothing, then `stats.compute` for the
last 365 days and the last 30 days, ROUNDS times each after one unmeasured call, with the
median and the slowest call, and the median CPU time of the process (both lanes together:
less disturbed than the wall clock when something else runs on the machine). Also prints
how many rows the year covers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta

import sqlalchemy as sa

from board.config import Settings
from board.db import close_database, make_database, stats_hours
from board.staff import stats
from board.staff.stats_page import parse_period, today_in


async def main(rounds: int) -> None:
    settings = Settings.from_env()
    db = make_database(settings)
    await db.connect()
    try:
        today = today_in(settings.timezone)
        year = parse_period(
            (today - timedelta(days=364)).isoformat(), None, today, settings.timezone
        )
        month = parse_period(None, None, today, settings.timezone)

        await db.execute(stats_hours.delete())
        started = time.perf_counter()
        figures = await stats.compute(db, settings, year)
        cold = (time.perf_counter() - started) * 1000
        hours = await db.fetch_val(sa.select(sa.func.count()).select_from(stats_hours))
        rows = [f"| 365 days, calendar built first ({hours} hours) | {cold:.0f} | – | – |"]
        for label, period in (("365 days", year), ("30 days", month)):
            await stats.compute(db, settings, period)
            times, cpu_times = [], []
            for _ in range(rounds):
                started, cpu_started = time.perf_counter(), time.process_time()
                await stats.compute(db, settings, period)
                times.append((time.perf_counter() - started) * 1000)
                cpu_times.append((time.process_time() - cpu_started) * 1000)
            rows.append(
                f"| {label} | {statistics.median(times):.0f} | {max(times):.0f}"
                f" | {statistics.median(cpu_times):.0f} |"
            )
        print(
            f"- the year: {figures.received} conversations received, "
            f"{figures.messages_from_customers + figures.messages_from_staff} messages, "
            f"{figures.solved} solved, {len(figures.staff)} staff members\n"
        )
        print(
            "| `stats.compute()` in-process | median ms | slowest ms | CPU ms, both lanes |\n"
            "|---|---:|---:|---:|"
        )
        print("\n".join(rows))
    finally:
        await close_database(db)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
