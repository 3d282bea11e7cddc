"""Announce to many customers, then drain the outbox into a real SMTP server on loopback.

    python bench/mail.py [CUSTOMERS]        (default 5000; a fresh temporary data folder)

Measures the two halves of the doorbell separately: the request's share (one
transaction that writes the announcement into every inbox and queues every mail,
set-based) and the sender's (claim, render German text + HTML, hand to aiosmtpd over
one connection per round of 50). Prints both; the machine line is for RESULTS.md.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from board import mail
from board.app import create_app, postman_for
from board.config import Settings
from board.db import close_database, outbox, sync_engine, users, utcnow
from board.setup import initialize
from board.staff.queries import announce


class Count:
    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_customers(settings: Settings, count: int) -> None:
    engine = sync_engine(settings)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            users.insert(),
            [
                {
                    "customer_number": 20001 + index,
                    "email": f"kunde{index}@example.com",
                    "name": f"Kundin Nummer {index}",
                    "role": "customer",
                    "password_hash": "!",
                    "created_at": now,
                }
                for index in range(count)
            ],
        )
    engine.dispose()


async def main(count: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    port = free_port()
    env = {"BOARD_DATA_DIR": str(data_dir), "BOARD_SMTP_HOST": "127.0.0.1"}
    settings = Settings.from_env({**env, "BOARD_SMTP_PORT": str(port)})
    initialize(settings)
    add_customers(settings, count)
    app = create_app(settings)
    db = app.state.db
    await db.connect()
    handler = Count()
    server = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    server.start()
    try:
        started = time.perf_counter()
        recipients = await announce(db, 1, "Neue Versandpreise ab Januar: Details im Forum.")
        queued_in = time.perf_counter() - started
        queued = await db.fetch_val(sa.select(sa.func.count()).select_from(outbox))

        postman = postman_for(app)
        started = time.perf_counter()
        sent = 0
        while batch := await mail.run_once(db, postman):
            sent += batch
        drained_in = time.perf_counter() - started
    finally:
        server.stop()
        await close_database(db)

    print(f"customers: {recipients}, mails queued: {queued}, received by SMTP: {handler.received}")
    print(f"announce + queue (one transaction): {queued_in * 1000:.0f} ms")
    print(f"drain: {sent} mails in {drained_in:.1f} s = {sent / drained_in:.0f} mails/s")
    cpus = os.cpu_count()
    print(f"machine: {cpus} CPUs, {platform.platform()}, Python {platform.python_version()}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
