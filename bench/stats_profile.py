"""Times the statistics in-process on the database in BOARD_DATA_DIR (bench/stats.sh).

Prints a Markdown table: building the calendar from nothing, then `stats.compute` (the
exact computation from the messages) for the last 365 days and the last 30 days, ROUNDS
times each after one unmeasured call, with the median and the slowest call, and the median
CPU time of the process (both lanes together: less disturbed than the wall clock when
something else runs on the machine). Also prints how many rows the year covers.

Then the daily aggregates (board/staff/stats_days.py): how long building every day from
nothing takes, and `stats_days.compute` (what the page runs) for all time, 365 and 30 days.
`--aggregates-only` skips the exact computation. Last, the CSV export of the period's
requests for all time, streamed as the page does, with its peak memory (tracemalloc).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import tracemalloc
from datetime import timedelta

import sqlalchemy as sa

from board.config import Settings
from board.db import close_database, make_database, stats_dirty, stats_hours
from board.db import stats_days as stats_days_table
from board.staff import stats, stats_days, stats_list
from board.staff.stats_list_page import csv_chunks
from board.staff.stats_page import parse_period, today_in


async def timed(compute, db, settings, period, rounds: int) -> tuple[float, float, float]:
    """Median and slowest wall-clock ms, median CPU ms, after one unmeasured call."""
    await compute(db, settings, period)
    times, cpu_times = [], []
    for _ in range(rounds):
        started, cpu_started = time.perf_counter(), time.process_time()
        await compute(db, settings, period)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - cpu_started) * 1000)
    return statistics.median(times), max(times), statistics.median(cpu_times)


async def export_memory(db, settings, period) -> None:
    """The period's CSV export as the page streams it, with tracemalloc: the peak of what
    Python allocates while producing it, against the size of the whole file."""
    tracemalloc.start()
    started = time.perf_counter()
    size = rows = 0
    async for chunk in csv_chunks(stats_list.period_batches(db, period), ";", settings.timezone):
        size += len(chunk.encode())
        rows += chunk.count("\r\n")
    elapsed = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"\n- CSV export of all time: {rows - 1} rows, {size / 1e6:.1f} MB in {elapsed:.1f} s; "
        f"peak Python memory while streaming (tracemalloc) {peak / 1e6:.1f} MB "
        f"(batches of {stats_list.EXPORT_BATCH} rows)"
    )


async def aggregates(db, settings, rounds: int) -> None:
    today = today_in(settings.timezone)
    first_day = await stats_days.first_day(db, settings)
    periods = [
        (f"all time ({first_day} to {today})", first_day),
        ("365 days", today - timedelta(days=364)),
        ("30 days", today - timedelta(days=29)),
    ]
    # From nothing: every day marked stale, as after the migration.
    await db.execute(stats_days_table.delete())
    await db.execute(stats_dirty.delete())
    await db.execute(
        sa.text(
            "INSERT INTO stats_dirty (hour) SELECT substr(created_at, 1, 13) FROM messages "
            "UNION SELECT substr(created_at, 1, 13) FROM conversations "
            "UNION SELECT substr(created_at, 1, 13) FROM conversation_events "
            "UNION SELECT substr(created_at, 1, 13) FROM users "
            "UNION SELECT substr(created_at, 1, 13) FROM topics "
            "UNION SELECT substr(created_at, 1, 13) FROM posts"
        )
    )
    started = time.perf_counter()
    days = await stats_days.refresh_all(db, settings)
    built = time.perf_counter() - started
    rows = await db.fetch_val(sa.select(sa.func.count()).select_from(stats_days_table))
    print(f"\n- daily aggregates built from nothing: {days} days, {rows} rows in {built:.1f} s\n")
    print(
        "| `stats_days.compute()` in-process | median ms | slowest ms | CPU ms |\n"
        "|---|---:|---:|---:|"
    )
    for label, first in periods:
        period = parse_period(first.isoformat(), None, today, settings.timezone)
        median, slowest, cpu = await timed(stats_days.compute, db, settings, period, rounds)
        print(f"| {label} | {median:.0f} | {slowest:.0f} | {cpu:.0f} |")
    whole = parse_period(first_day.isoformat(), None, today, settings.timezone)
    figures = await stats_days.compute(db, settings, whole)
    exact = await stats.compute(db, settings, whole)
    print(
        f"\n- all time: {figures.received} received, {figures.answered} answered, "
        f"{figures.solved} solved (exact: {exact.received}, {exact.answered}, {exact.solved}); "
        f"median first response {figures.first_response.business_median:.3f} business hours "
        f"(exact {exact.first_response.business_median:.3f}), "
        f"{figures.first_response.calendar_median:.3f} calendar hours "
        f"(exact {exact.first_response.calendar_median:.3f}); median time to solve "
        f"{figures.time_to_solve.calendar_median:.3f} h (exact "
        f"{exact.time_to_solve.calendar_median:.3f})"
    )
    await export_memory(db, settings, whole)


async def main(rounds: int, aggregates_only: bool) -> None:
    settings = Settings.from_env()
    db = make_database(settings)
    await db.connect()
    try:
        if aggregates_only:
            await aggregates(db, settings, rounds)
            return
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
        await aggregates(db, settings, rounds)
    finally:
        await close_database(db)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--aggregates-only", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.aggregates_only))
