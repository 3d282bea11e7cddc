"""Peak memory of one search, whatever the number of hits (tracemalloc, in-process).

For each search-box query and each new-message draft of bench/search_profile.py, and the
query of the 2.1 GB incident ("Paket Rücksendung"), as a guest (forum), a customer
(everything: the forum and the own conversations) and staff (everything): the transient
peak that one call allocates above what was allocated before it, and the number of hits.
The first call of a kind also fills what an open searcher keeps (field lengths, the
viewer's filter); that is printed on its own line, then every call is measured warm.

    BOARD_DATA_DIR=/tmp/demo python bench/search_memory.py
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from search_profile import DRAFTS, QUERIES  # noqa: E402

from board.config import Settings  # noqa: E402
from board.db import conversations, sync_engine, users  # noqa: E402
from board.search import querying  # noqa: E402
from board.security import CurrentUser  # noqa: E402

INCIDENT = "Paket Rücksendung"


def person(settings: Settings, role: str) -> CurrentUser:
    """The customer with the most conversations, or the first staff member."""
    engine = sync_engine(settings)
    with engine.connect() as connection:
        if role == "customer":
            wanted = (
                sa.select(conversations.c.customer_id)
                .where(conversations.c.customer_id.is_not(None))
                .group_by(conversations.c.customer_id)
                .order_by(sa.func.count().desc())
                .limit(1)
            )
        else:
            wanted = sa.select(users.c.id).where(users.c.role == "staff").limit(1)
        user_id = connection.execute(wanted).scalar_one()
        row = connection.execute(sa.select(users).where(users.c.id == user_id)).one()
    engine.dispose()
    return CurrentUser(
        id=row.id,
        name=row.name,
        email=row.email,
        role=row.role,
        customer_number=row.customer_number,
        title=None,
        locale=None,
        must_change_password=False,
        session_hash="",
    )


def peak(call) -> tuple[float, float, object]:
    """MB allocated at the peak of the call above the start, milliseconds, result."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    result = call()
    milliseconds = (time.perf_counter() - started) * 1000
    return (tracemalloc.get_traced_memory()[1] - before) / 2**20, milliseconds, result


def main() -> int:
    settings = Settings.from_env()
    viewers = {
        "guest, forum": (None, "forum"),
        "customer, all": (person(settings, "customer"), "all"),
        "staff, all": (person(settings, "staff"), "all"),
    }
    tracemalloc.start()
    worst = 0.0
    print("| who | query | hits | peak MB | ms |")
    print("|---|---|---:|---:|---:|")
    for label, (viewer, scope) in viewers.items():
        for index, text in enumerate((INCIDENT, *QUERIES)):

            def one(text=text, viewer=viewer, scope=scope):
                return querying.search(settings, text, viewer, scope=scope)

            if index == 0:
                megabytes, milliseconds, _ = peak(one)
                print(
                    f"| {label} | first call, fills the searcher | | {megabytes:.1f} | "
                    f"{milliseconds:.0f} |"
                )
            megabytes, milliseconds, found = peak(one)
            worst = max(worst, megabytes)
            print(f"| {label} | {text} | {found.total} | {megabytes:.1f} | {milliseconds:.0f} |")
    for draft in DRAFTS:
        megabytes, milliseconds, found = peak(lambda draft=draft: querying.suggest(settings, draft))
        worst = max(worst, megabytes)
        print(f"| suggest | {draft[:40]}… | {len(found)} | {megabytes:.1f} | {milliseconds:.0f} |")
    print(f"\nlargest peak of one warm call: {worst:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
