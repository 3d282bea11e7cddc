"""Two machines on one PostgreSQL: two run.py processes, each with its own data folder
(its own search index), sharing the database and the secret key, as behind a load
balancer. What one accepts, the other must know: mail goes out once, live events reach
across, and abuse limits count both."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from board.setup import initialize
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    SMTPCollector,
    free_port,
    login,
    make_settings,
    start_smtp,
    wait_for,
)
from tests.postgres import fresh_database, throwaway_cluster
from tests.test_events import Listening, answer, customer, staff, visitor, write
from tests.test_faults import Server, add_customers, close_all, log_in_all, logged_in

SECRET_KEY = "shared-between-machines-" + "0" * 40  # every machine signs alike


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    with throwaway_cluster(free_port()) as url:
        yield url


@pytest.fixture
def two_machines(tmp_path: Path, postgres_server: str) -> Iterator[Callable[..., list[Server]]]:
    """Starts machine a, then b, on a fresh database; both are gone afterwards."""
    started: list[Server] = []
    with fresh_database(postgres_server) as database_url:

        def start(**env: str) -> list[Server]:
            for name in ("a", "b"):
                settings = make_settings(tmp_path / name, database_url=database_url)
                if name == "a":
                    initialize(settings)  # schema, admin, categories: once, like an operator
                server = Server(
                    settings=settings,
                    log_path=tmp_path / f"{name}.log",
                    env={
                        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                        "PYTHONUNBUFFERED": "1",
                        "BOARD_DATA_DIR": str(settings.data_dir),
                        "BOARD_DATABASE_URL": database_url,
                        "BOARD_SECRET_KEY": SECRET_KEY,
                        "BOARD_SEARCH_NODE": name,
                        "BOARD_ADMIN_EMAIL": ADMIN_EMAIL,
                        "BOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                        "BOARD_FLOOD_SECONDS": "0",
                        **env,
                    },
                )
                started.append(server.start())
            return started

        try:
            yield start
        finally:
            for server in started:
                if server.running():
                    os.killpg(server.process.pid, signal.SIGKILL)
                    server.process.wait(timeout=10)


def assert_no_errors(*servers: Server) -> None:
    for server in servers:
        log = server.log()
        assert "Traceback" not in log, log[-4000:]


def test_each_mail_goes_out_once_though_both_machines_send(two_machines):
    collector = SMTPCollector()
    smtp_port = free_port()
    smtp = start_smtp(smtp_port, collector)
    try:
        a, b = two_machines(BOARD_SMTP_HOST="127.0.0.1", BOARD_SMTP_PORT=str(smtp_port))
        emails = add_customers(a.settings, 6)
        questions = 24

        async def ask_and_answer() -> list[int]:
            customers = await log_in_all(a.base, emails[:3]) + await log_in_all(b.base, emails[3:])
            numbers = []
            for turn in range(questions):  # customers of both machines
                visitor_ = customers[turn % len(customers)]
                response = await visitor_.post("/inbox/new", {"body": f"Frage Nummer {turn}"})
                assert response.status_code == 303, response.text[:300]
                numbers.append(int(re.search(r"/inbox/(\d+)", response.headers["location"])[1]))
            await close_all(customers)
            team = [await logged_in(a.base, ADMIN_EMAIL, ADMIN_PASSWORD)]
            team.append(await logged_in(b.base, ADMIN_EMAIL, ADMIN_PASSWORD))
            answers = [
                team[turn % 2].post(
                    f"/staff/t/{number}/reply", {"body": f"Antwort {number}", "status": "pending"}
                )
                for turn, number in enumerate(numbers)
            ]
            assert {response.status_code for response in await asyncio.gather(*answers)} == {303}
            await close_all(team)
            return numbers

        numbers = asyncio.run(ask_and_answer())
        wait_for(lambda: len(collector.messages) >= questions, timeout=30)
        time.sleep(3)  # both senders run every few seconds: time for a duplicate to show
    finally:
        smtp.stop()
    ids = Counter(message["Message-ID"] for message in collector.messages)
    assert [key for key, count in ids.items() if count > 1] == []
    tickets = sorted(int(re.search(r"#(\d+)", m["Subject"])[1]) for m in collector.messages)
    assert tickets == sorted(numbers)
    assert_no_errors(a, b)


@pytest.mark.parametrize(
    "broadcast",
    [
        pytest.param({}, id="through-the-database"),
        # LISTEN/NOTIFY via `broadcaster`; polling once a minute could not make it in time.
        pytest.param({"BOARD_EVENTS_POLL_SECONDS": "60"}, id="through-listen-notify"),
    ],
)
def test_an_answer_on_one_machine_reaches_a_page_open_on_the_other(
    two_machines, postgres_server, broadcast
):
    env = dict(broadcast)
    if broadcast:
        env["BOARD_BROADCAST_URL"] = postgres_server.replace("postgresql://", "postgres://")
    a, b = two_machines(**env)
    erika = customer(b.base, "Erika Mustermann", "erika@example.com")
    team = staff(a.base)
    number = write(erika, "Eine Frage an Maschine b.")
    stream = Listening(visitor(b.base))
    stream.client.cookies = erika.cookies
    stream.start()
    try:
        message_id = answer(team, number, "Die Antwort kommt von Maschine a.")
        assert stream.next("message", timeout=3.0, conversation=number, id=message_id)
    finally:
        for person in (stream, erika, team):
            person.close()
    assert_no_errors(a, b)


def test_failed_logins_count_across_both_machines(two_machines):
    a, b = two_machines()
    add_customers(a.settings, 1)  # kunde0@example.com
    answers = []
    for attempt in range(6):  # 5 allowed per account; a and b take turns
        base = (a.base, b.base)[attempt % 2]
        person = visitor(base)
        answers.append(login(person, "kunde0@example.com", "falsches-passwort-1").status_code)
        person.close()
    assert 429 not in answers[:5], answers
    assert answers[5] == 429, answers
    # The right password does not help now, on either machine.
    for base in (a.base, b.base):
        person = visitor(base)
        assert login(person, "kunde0@example.com", "kunden-passwort-1").status_code == 429
        person.close()
    assert_no_errors(a, b)
