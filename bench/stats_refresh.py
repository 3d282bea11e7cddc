"""How long the statistics task takes to catch up after a bulk write.

    python bench/stats_refresh.py FILLED_FOLDER [--work-dir DIR]

Copies the database of a folder filled earlier (`python -m board demo`), marks every hour
with a message or a conversation stale the way the triggers do after an import (one
`stats_dirty` row per row written), and times `stats_days.refresh_all` until no day is
stale. The copy goes to a temporary folder (or DIR) and is deleted afterwards.
"""

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def prepare(source: Path, target: Path) -> tuple[int, int]:
    sqlite3.connect(source / "board.db").backup(sqlite3.connect(target / "board.db"))
    shutil.copy(source / "secret_key", target)
    connection = sqlite3.connect(target / "board.db")
    with connection:
        connection.execute("DELETE FROM stats_dirty")
        for table in ("messages", "conversations"):
            connection.execute(
                f"INSERT INTO stats_dirty (hour) SELECT substr(created_at, 1, 13) FROM {table}"
            )
    rows, hours = connection.execute(
        "SELECT count(*), count(DISTINCT hour) FROM stats_dirty"
    ).fetchone()
    connection.close()
    return rows, hours


async def refresh(folder: Path) -> tuple[int, float]:
    os.environ["BOARD_DATA_DIR"] = str(folder)
    from board.config import Settings
    from board.db import close_database, make_database
    from board.staff.stats_days import refresh_all

    settings = Settings.from_env()
    database = make_database(settings)
    await database.connect()
    try:
        started = time.perf_counter()
        days = await refresh_all(database, settings)
        return days, time.perf_counter() - started
    finally:
        await close_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("filled", type=Path, help="a folder filled by python -m board demo")
    parser.add_argument("--work-dir", type=Path, help="where the copy goes (default: /tmp)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(dir=args.work_dir))
    try:
        rows, hours = prepare(args.filled, folder)
        days, seconds = asyncio.run(refresh(folder))
        print(f"{rows} stale-hour rows over {hours} hours: {days} days in {seconds:.1f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
