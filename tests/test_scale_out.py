"""Two machines on one PostgreSQL: two run.py processes, each with its own data folder
(its own search index), sharing the database and the secret key, as behind a load
balancer. What one accepts, the other must know: mail goes out once, live events reach
across, uploads on a shared folder serve from both, and abuse limits count both."""

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
    PASSWORD,
    SMTPCollector,
    free_port,
    login,
    make_settings,
    start_smtp,
    submit,
    wait_for,
)
from tests.postgres import fresh_database
from tests.test_events import Listening, answer, customer, staff, visitor, write
from tests.test_faults import (
    Server,
    add_customers,
    close_all,
    log_in_all,
    logged_in,
    new_conversation,
    pdf_with,
)

# Starts its machines on a database of its own: once, in the SQLite pass.
pytestmark = pytest.mark.own_database

SECRET_KEY = "shared-between-machines-" + "0" * 40  # every machine signs alike


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


@pytest.mark.parametrize("shared", [True, False], ids=["shared-folder", "own-folders"])
def test_a_file_uploaded_on_one_machine_downloads_from_the_other(two_machines, tmp_path, shared):
    """With BOARD_UPLOAD_DIR on storage both machines mount, either serves every file; with
    each machine's own <data>/uploads, the other one cannot (what the setting is for)."""
    env = {"BOARD_UPLOAD_DIR": str(tmp_path / "shared-uploads")} if shared else {}
    a, b = two_machines(**env)
    add_customers(a.settings, 1)
    content = pdf_with("Rechnung RE-2026-0042")

    async def upload_on_b() -> int:
        [erika] = await log_in_all(b.base, ["kunde0@example.com"])
        upload = {"attachments": ("rechnung.pdf", content)}
        number = await new_conversation(erika, "Meine Rechnung anbei.", files=upload)
        await close_all([erika])
        return number

    number = asyncio.run(upload_on_b())
    team = staff(a.base)
    page = team.get(f"/staff/t/{number}").text
    link = re.search(r'href="(/attachments/\d+/[^"]+)"', page)[1]
    download = team.get(link)
    team.close()
    if shared:
        assert download.status_code == 200 and download.content == content
        assert not (a.settings.data_dir / "uploads").exists()  # nothing kept beside it
    else:
        assert download.status_code == 404
    assert_no_errors(a, b)


def found_on(person, text: str, scope: str) -> list[str]:
    """The refs (topic ids, ticket numbers) one machine's search page lists."""
    response = person.get("/search", params={"q": text, "scope": scope})
    assert response.status_code == 200, response.text[:300]
    return re.findall(r'<li class="search-hit" data-kind="\w+" data-ref="(\d+)">', response.text)


def test_what_is_written_on_one_machine_is_found_by_search_on_the_other(two_machines):
    """Each machine keeps its own index, fed from the shared queue: within seconds b finds
    what a accepted, with the same access rules."""
    a, b = two_machines()
    team_on_a = staff(a.base)
    topic = re.search(
        r"/t/(\d+)",
        submit(
            team_on_a,
            "/c/technik-und-fragen/new",
            {"title": "Wackeldackel wackelt nicht", "body": "Die Feder ist gebrochen."},
            form_page="/c/technik-und-fragen/new",
        ).headers["location"],
    )[1]
    erika = customer(a.base, "Erika Mustermann", "erika@example.com")
    number = write(erika, "Meine Kuckucksuhr ruft nicht mehr.")
    erika.close()

    guest_on_b, erika_on_b = visitor(b.base), visitor(b.base)
    assert login(erika_on_b, "erika@example.com", PASSWORD).status_code == 303
    otto_on_b = customer(b.base, "Otto Normal", "otto@example.com")
    assert wait_for(lambda: found_on(guest_on_b, "Wackeldackel", "forum"), timeout=15) == [topic]
    assert wait_for(lambda: found_on(erika_on_b, "Kuckucksuhr", "inbox"), timeout=15) == [
        str(number)
    ]
    # The same rules as on one machine: a private message is found by its writer only.
    assert found_on(otto_on_b, "Kuckucksuhr", "inbox") == []
    assert found_on(guest_on_b, "Kuckucksuhr", "all") == []
    for person in (team_on_a, guest_on_b, erika_on_b, otto_on_b):
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
