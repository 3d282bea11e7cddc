"""Faults, against the real server process (run.py on a loopback port, a real SQLite file):
many writers and readers at once, kill -9 in the middle of writes, SMTP away across a
restart, the search index deleted under load, and SIGTERM while a request is in flight.

Each test names the protection it checks; removing that protection makes it fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from board.config import PROJECT_ROOT, Settings
from board.db import (
    attachments,
    messages,
    outbox,
    posts,
    search_nodes,
    search_queue,
    sync_engine,
    topics,
    users,
    utcnow,
)
from board.search.indexing import index_dir
from board.security import hash_password
from board.setup import initialize
from board.uploads import stored_path
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    SMTPCollector,
    csrf_from,
    database_env,
    free_port,
    make_settings,
    start_smtp,
    wait_for,
)

# Runs on PostgreSQL too: concurrent writers (BEGIN IMMEDIATE or PostgreSQL transactions), mail
# claims (SKIP LOCKED).
pytestmark = pytest.mark.postgresql

HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


# --- the server as a process ---------------------------------------------------------------


@dataclass
class Server:
    """run.py in a process of its own, started, killed and restarted by the test."""

    settings: Settings
    log_path: Path
    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "run.py",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: worker processes included
            )
        wait_for(self._answers, timeout=40)
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited early:\n{self.log()[-3000:]}")
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """kill -9: no shutdown code runs, as in a crash or an OOM kill."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as systemd or docker stop send it; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def restart(self) -> None:
        assert self.terminate() == 0, self.log()[-3000:]
        self.start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts run.py on a fresh data folder; every process it started is gone afterwards."""
    started: list[Server] = []

    def start(workers: int = 1, **env: str) -> Server:
        settings = make_settings(tmp_path / "data")
        initialize(settings)  # the schema and the admin, so the test can add people first
        server = Server(
            settings=settings,
            log_path=tmp_path / "server.log",
            workers=workers,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONUNBUFFERED": "1",  # the log is whole up to a kill -9
                "BOARD_DATA_DIR": str(settings.data_dir),
                "BOARD_ADMIN_EMAIL": ADMIN_EMAIL,
                "BOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "BOARD_FLOOD_SECONDS": "0",
                **database_env(),
                **env,
            },
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        if server.running():
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


def assert_no_server_errors(server: Server) -> None:
    log = server.log()
    assert "database is locked" not in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]


# --- people, made directly in the database and logged in over HTTP -------------------------


def add_customers(settings: Settings, count: int) -> list[str]:
    """Customers with one password hash between them: argon2 costs 0.3 s a hash here."""
    password_hash = hash_password(PASSWORD)
    emails = [f"kunde{number}@example.com" for number in range(count)]
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            users.insert(),
            [
                {
                    "customer_number": 50001 + number,
                    "email": email,
                    "name": f"Kunde {number}",
                    "role": "customer",
                    "password_hash": password_hash,
                    "created_at": utcnow(),
                }
                for number, email in enumerate(emails)
            ],
        )
    engine.dispose()
    return emails


@dataclass
class Visitor:
    client: httpx.AsyncClient
    csrf: str = ""

    async def post(self, path: str, data: dict, **kwargs) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": self.csrf, **data}, **kwargs)


async def logged_in(base: str, login_value: str, password: str = PASSWORD) -> Visitor:
    client = httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT, follow_redirects=False)
    token = csrf_from((await client.get("/login")).text)
    response = await client.post(
        "/login", data={"csrf_token": token, "login": login_value, "password": password}
    )
    assert response.status_code == 303, response.text[:500]
    # The token is bound to the session: read it again from a page of the logged-in visitor.
    return Visitor(client, csrf_from((await client.get("/account")).text))


async def log_in_all(base: str, emails: list[str]) -> list[Visitor]:
    return list(await asyncio.gather(*(logged_in(base, email) for email in emails)))


async def close_all(visitors: list[Visitor]) -> None:
    await asyncio.gather(*(visitor.client.aclose() for visitor in visitors))


async def status_of(request) -> int | str:
    """The status code, or the name of the error when no answer came (a reset connection)."""
    try:
        return (await request).status_code
    except httpx.HTTPError as error:
        return type(error).__name__


async def new_conversation(visitor: Visitor, body: str, files=None) -> int:
    response = await visitor.post("/inbox/new", {"body": body}, files=files)
    assert response.status_code == 303, response.text[:500]
    return int(re.search(r"/inbox/(\d+)", response.headers["location"])[1])


async def new_topic(visitor: Visitor, title: str, body: str) -> int:
    response = await visitor.post("/c/technik-und-fragen/new", {"title": title, "body": body})
    assert response.status_code == 303, response.text[:500]
    return int(re.search(r"/t/(\d+)", response.headers["location"])[1])


def pdf_with(text: str) -> bytes:
    """Enough of a PDF for the upload check (it judges the first bytes), unique per text."""
    return b"%PDF-1.4\n% " + text.encode() + b"\n" + os.urandom(2048) + b"\n%%EOF\n"


def query_all(settings: Settings, statement) -> list:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    engine.dispose()
    return rows


def bodies_of(settings: Settings) -> Counter:
    """Every post and message body in the database, counted."""
    rows = query_all(settings, sa.select(posts.c.body).union_all(sa.select(messages.c.body)))
    return Counter(row[0] for row in rows)


# --- (a) many writers and readers at once --------------------------------------------------

WRITERS = 50
READERS = 50
WRITES_EACH = 4
CUSTOMERS = 10  # writers share them: a login costs an argon2 hash


def test_fifty_writers_and_fifty_readers_lose_nothing_and_never_meet_a_locked_database(
    start_server,
):
    """Protections: WAL (readers never wait for the writer), busy_timeout, and BEGIN
    IMMEDIATE in write_transaction (a deferred transaction that reads first and then
    writes fails with "database is locked" at once when another writer got there first)."""
    server = start_server()
    emails = add_customers(server.settings, CUSTOMERS)

    async def run() -> tuple[list, list]:
        customers = await log_in_all(server.base, emails)
        topic_id = await new_topic(customers[0], "Last im Forum", "Wer schreibt hier alles?")
        wait_for(lambda: httpx.get(f"{server.base}/search?q=Last").status_code == 200)
        written: list[tuple[str, int]] = []
        read: list[tuple[str, int]] = []
        writing_done = asyncio.Event()

        async def writer(number: int) -> None:
            visitor = customers[number % CUSTOMERS]
            for turn in range(WRITES_EACH):
                body = f"Schreiber {number} Zug {turn} unter Last"
                path = f"/t/{topic_id}/reply" if (number + turn) % 2 else "/inbox/new"
                written.append((body, await status_of(visitor.post(path, {"body": body}))))

        async def reader(number: int) -> None:
            # Half read as guests (the page cache answers some), half as customers.
            if number % 2:
                client = customers[number % CUSTOMERS].client
            else:
                client = httpx.AsyncClient(base_url=server.base, timeout=HTTP_TIMEOUT)
            paths = [f"/t/{topic_id}", f"/t/{topic_id}?page=2", "/"]
            if number % 2:  # guests have a search rate limit per address; customers do not
                paths.append("/search?q=Last")
            turn = 0
            while not writing_done.is_set():
                path = paths[(number + turn) % len(paths)]
                read.append((path, await status_of(client.get(path))))
                turn += 1
            if not number % 2:
                await client.aclose()

        readers = [asyncio.create_task(reader(number)) for number in range(READERS)]
        await asyncio.wait_for(
            asyncio.gather(*(writer(number) for number in range(WRITERS))), timeout=90
        )
        writing_done.set()
        await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
        await close_all(customers)
        return written, read

    written, read = asyncio.run(run())

    refused = [(body, status) for body, status in written if status != 303]
    assert not refused, refused[:10]
    assert len(written) == WRITERS * WRITES_EACH
    failed_reads = Counter((path, status) for path, status in read if status != 200)
    assert not failed_reads, failed_reads
    assert len(read) >= READERS
    stored = bodies_of(server.settings)
    assert {body: stored[body] for body, _status in written} == {
        body: 1 for body, _status in written
    }
    assert_no_server_errors(server)
    # Without WAL the busy timeout hides the cost (readers and the writer wait for each
    # other, slowly), so the file's mode is checked itself.
    if server.settings.is_sqlite:
        with sqlite3.connect(server.settings.sqlite_path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# --- (b) kill -9 in the middle of writes ---------------------------------------------------

ACKNOWLEDGED_BEFORE_KILL = 60


def test_kill_9_during_writes_keeps_every_acknowledged_write_and_leaves_no_half_done_work(
    start_server,
):
    """Protections: each write is one transaction that moves its files into the store and
    queues its mail and index work (outbox, search_queue); the background tasks
    drain both queues again after a restart."""
    # No SMTP host: mail goes to <data>/outbox/*.eml. A round killed mid-way leaves its
    # mails claimed for a lease (5 s at the shortest retry pause) before another takes them.
    server = start_server(BOARD_MAIL_RETRY_SECONDS="1")
    settings = server.settings
    emails = add_customers(settings, 4)

    async def write_until_killed() -> list[str]:
        customers = await log_in_all(server.base, emails)
        staff = await logged_in(server.base, ADMIN_EMAIL, ADMIN_PASSWORD)
        topic_id = await new_topic(customers[0], "Absturz", "Was bleibt nach einem Absturz?")
        numbers = [await new_conversation(customers[1], "Erste Anfrage vor dem Absturz")]
        acknowledged: list[str] = []
        killed = asyncio.Event()

        async def customer_writes(number: int) -> None:
            visitor = customers[number % len(customers)]
            for turn in range(1000):
                body = f"Kunde {number} Zug {turn} vor dem Absturz"
                if turn % 2:
                    response = await visitor.post(f"/t/{topic_id}/reply", {"body": body})
                else:  # a new conversation with an upload
                    upload = {"attachments": (f"beleg-{number}-{turn}.pdf", pdf_with(body))}
                    response = await visitor.post("/inbox/new", {"body": body}, files=upload)
                    if response.status_code == 303:
                        numbers.append(int(response.headers["location"].rsplit("/", 1)[1]))
                assert response.status_code == 303, response.text[:300]
                acknowledged.append(body)

        async def staff_answers() -> None:
            for turn in range(1000):
                body = f"Antwort {turn} vor dem Absturz"
                number = numbers[turn % len(numbers)]
                data = {"body": body, "status": "pending"}
                response = await staff.post(f"/staff/t/{number}/reply", data)
                assert response.status_code == 303, response.text[:300]
                acknowledged.append(body)

        async def kill_midway() -> None:
            # Staff answers too (each queues a mail): on a busy machine the customers alone
            # could reach the count first.
            while len(acknowledged) < ACKNOWLEDGED_BEFORE_KILL or not any(
                body.startswith("Antwort") for body in acknowledged
            ):
                await asyncio.sleep(0.01)
            server.kill()
            killed.set()

        async def until_killed(work) -> None:
            try:
                await work
            except httpx.TransportError:
                assert killed.is_set() or not server.running()

        tasks = [until_killed(customer_writes(number)) for number in range(8)]
        tasks += [until_killed(staff_answers()), kill_midway()]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        await close_all([*customers, staff])
        return acknowledged

    acknowledged = asyncio.run(write_until_killed())

    # The file as the crash left it (SQLite recovers the WAL when it is opened).
    if settings.is_sqlite:
        with sqlite3.connect(settings.sqlite_path) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []

    server.start()
    stored = bodies_of(settings)
    assert {body: stored[body] for body in acknowledged} == {body: 1 for body in acknowledged}
    for row in query_all(settings, sa.select(attachments)):
        path = stored_path(settings.upload_dir, row.sha256)
        assert path.exists() and path.stat().st_size == row.size, row
    # Counters kept on the rows were written in the transaction of the post they count.
    for topic in query_all(settings, sa.select(topics)):
        counted = query_all(
            settings, sa.select(sa.func.count()).where(posts.c.topic_id == topic.id)
        )[0][0]
        assert topic.post_count == counted, topic

    def drained() -> bool:
        unsent = query_all(settings, sa.select(outbox.c.id).where(outbox.c.sent_at.is_(None)))
        indexed_up_to = sa.select(sa.func.min(search_nodes.c.position)).scalar_subquery()
        queued = query_all(
            settings, sa.select(search_queue.c.id).where(search_queue.c.id > indexed_up_to)
        )
        return not unsent and not queued

    wait_for(drained, timeout=45)
    sent = query_all(settings, sa.select(outbox.c.id))
    assert sent, "the staff answers queued no mail"
    written = {path.name for path in (settings.data_dir / "outbox").glob("*.eml")}
    assert {f"{row.id:08d}.eml" for row in sent} <= written
    assert "database disk image is malformed" not in server.log()


# --- (c) SMTP away across a restart --------------------------------------------------------

NOTIFICATIONS = 100


def test_mail_queued_while_smtp_is_down_arrives_exactly_once_after_a_restart(start_server):
    """Protections: the outbox row is written with the answer; two worker processes share
    the outbox through claims (without them both send the same mail); a round stopped by
    the restart hands its claimed mail back instead of holding it for a lease."""
    smtp_port = free_port()  # nothing listens here until the end
    server = start_server(
        workers=2,
        BOARD_SMTP_HOST="127.0.0.1",
        BOARD_SMTP_PORT=str(smtp_port),
        BOARD_MAIL_RETRY_SECONDS="0.2",  # pauses of 0.2 s doubling up to 6 s
    )
    emails = add_customers(server.settings, 10)

    async def answer_all(numbers: list[int], staff: Visitor) -> None:
        async def answer(number: int) -> None:
            data = {"body": f"Antwort zu {number}", "status": "pending"}
            response = await staff.post(f"/staff/t/{number}/reply", data)
            assert response.status_code == 303, response.text[:300]

        for start in range(0, len(numbers), 10):
            await asyncio.gather(*(answer(number) for number in numbers[start : start + 10]))

    async def conversations() -> list[int]:
        customers = await log_in_all(server.base, emails)
        numbers = await asyncio.gather(
            *(
                new_conversation(customers[turn % len(customers)], f"Frage Nummer {turn}")
                for turn in range(NOTIFICATIONS)
            )
        )
        await close_all(customers)
        return list(numbers)

    async def first_half() -> tuple[list[int], dict]:
        numbers = await conversations()
        staff = await logged_in(server.base, ADMIN_EMAIL, ADMIN_PASSWORD)
        await answer_all(numbers[: NOTIFICATIONS // 2], staff)
        cookies = dict(staff.client.cookies)
        await staff.client.aclose()
        return numbers, cookies

    async def second_half(numbers: list[int], cookies: dict) -> None:
        client = httpx.AsyncClient(base_url=server.base, timeout=HTTP_TIMEOUT, cookies=cookies)
        staff = Visitor(client, csrf_from((await client.get("/account")).text))
        await answer_all(numbers[NOTIFICATIONS // 2 :], staff)
        await client.aclose()

    numbers, cookies = asyncio.run(first_half())
    wait_for(lambda: failed_attempts(server.settings) > 0)  # it did try, and SMTP was away
    server.restart()
    asyncio.run(second_half(numbers, cookies))
    assert not query_all(
        server.settings, sa.select(outbox.c.id).where(outbox.c.sent_at.is_not(None))
    )

    collector = SMTPCollector()
    smtp = start_smtp(smtp_port, collector)
    try:
        wait_for(lambda: len(collector.messages) >= NOTIFICATIONS, timeout=60)
        wait_for(lambda: not unsent(server.settings), timeout=10)
        time.sleep(2)  # time for a duplicate to arrive, if a second round sent one
    finally:
        smtp.stop()

    ids = Counter(message["Message-ID"] for message in collector.messages)
    assert [key for key, count in ids.items() if count > 1] == []
    received = sorted(
        int(re.search(r"#(\d+)", message["Subject"])[1]) for message in collector.messages
    )
    assert received == sorted(numbers)
    assert server.terminate() == 0


def failed_attempts(settings: Settings) -> int:
    return query_all(settings, sa.select(sa.func.coalesce(sa.func.sum(outbox.c.attempts), 0)))[0][0]


def unsent(settings: Settings) -> list:
    return query_all(settings, sa.select(outbox.c.id).where(outbox.c.sent_at.is_(None)))


# --- (d) the search index deleted under load -----------------------------------------------


def remove_index(settings: Settings) -> None:
    """rm -rf <data>/index, as a careless operator or a full disk's cleanup would."""
    folder = index_dir(settings)
    for _attempt in range(5):  # the indexer may be writing a file into it right now
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
    raise AssertionError(f"{folder} could not be removed")


def test_a_deleted_search_index_answers_politely_and_is_rebuilt_under_load(start_server):
    """Protections: searches catch an unavailable index (a 503 page that says search is
    being prepared, never a 500); the indexer notices the missing index and rebuilds it
    from the database while the server runs."""
    server = start_server()
    emails = add_customers(server.settings, 4)

    async def run() -> list[tuple]:
        customers = await log_in_all(server.base, emails)
        topic_id = await new_topic(
            customers[0], "Kaffeemaschine entkalken", "Wie entkalke ich die Kaffeemaschine?"
        )

        async def finds(word: str) -> bool:
            """Only this topic holds the word: any hit is it."""
            response = await customers[1].client.get("/search", params={"q": word})
            return response.status_code == 200 and 'class="hit-title"' in response.text

        await until(lambda: finds("Kaffeemaschine"), timeout=20)
        answers: list[tuple] = []
        stop = asyncio.Event()

        async def search(visitor: Visitor) -> None:
            while not stop.is_set():
                response = await visitor.client.get("/search", params={"q": "Kaffeemaschine"})
                answers.append((response.status_code, response.text))

        async def write(visitor: Visitor) -> None:
            turn = 0
            while not stop.is_set():
                body = f"Noch eine Frage zum Entkalken, Nummer {turn}"
                response = await visitor.post(f"/t/{topic_id}/reply", {"body": body})
                assert response.status_code == 303, response.text[:300]
                turn += 1

        load = [search(visitor) for visitor in customers for _ in range(3)]
        load += [write(visitor) for visitor in customers[:2]]
        running = asyncio.gather(*load)
        try:
            await asyncio.sleep(1)
            await asyncio.to_thread(remove_index, server.settings)
            await until(lambda: finds("Kaffeemaschine"), timeout=30)  # rebuilt
            # And indexing goes on: a word written after the rebuild is found too.
            await customers[2].post(f"/t/{topic_id}/reply", {"body": "Mit Zitronensäure"})
            await until(lambda: finds("Zitronensäure"), timeout=20)
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=30)
            await close_all(customers)
        return answers

    answers = asyncio.run(run())
    statuses = Counter(status for status, _text in answers)
    # The index is gone until the rebuild swaps the new one in: a dozen searchers meet that.
    assert statuses.keys() == {200, 503}, statuses
    assert all('id="search-unavailable"' in text for status, text in answers if status == 503)
    assert_no_server_errors(server)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


# --- (e) SIGTERM while a request is in flight ----------------------------------------------

BOUNDARY = "faults-boundary"


async def slow_upload(token: str, body: str, sent_first_part: asyncio.Event):
    """A multipart form whose 2 MB file arrives over about three seconds."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="body"\r\n\r\n{body}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachments"; '
        f'filename="gross.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
    ).encode()
    yield pdf_with(body)
    sent_first_part.set()
    for _chunk in range(20):
        await asyncio.sleep(0.15)
        yield b"%" + os.urandom(100 * 1024).hex().encode()[: 100 * 1024 - 2] + b"\n"
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_sigterm_finishes_the_upload_in_flight_and_exits_with_0(start_server):
    """Protections: uvicorn's graceful shutdown (requests in flight finish, open event
    streams end), the lifespan stopping the background tasks, and run.py turning the
    signal uvicorn raises again afterwards into exit code 0."""
    server = start_server()
    [email] = add_customers(server.settings, 1)
    body = "Die große Datei kam während des Neustarts"

    async def run() -> tuple[int, int]:
        visitor = await logged_in(server.base, email)
        listening = visitor.client.stream("GET", "/events", timeout=HTTP_TIMEOUT)
        stream = await listening.__aenter__()
        assert stream.status_code == 200
        sent_first_part = asyncio.Event()
        upload = asyncio.create_task(
            visitor.client.post(
                "/inbox/new",
                content=slow_upload(visitor.csrf, body, sent_first_part),
                headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
        )
        await asyncio.wait_for(sent_first_part.wait(), timeout=10)
        server.process.send_signal(signal.SIGTERM)
        response = await asyncio.wait_for(upload, timeout=30)
        exit_code = await asyncio.to_thread(server.process.wait, 30)
        await listening.__aexit__(None, None, None)
        await visitor.client.aclose()
        return response.status_code, exit_code

    status, exit_code = asyncio.run(run())
    assert status == 303
    assert exit_code == 0, server.log()[-3000:]
    [stored] = query_all(
        server.settings,
        sa.select(attachments.c.sha256, attachments.c.size)
        .select_from(attachments.join(messages, messages.c.id == attachments.c.message_id))
        .where(messages.c.body == body),
    )
    assert stored.size > 2_000_000
    assert stored_path(server.settings.upload_dir, stored.sha256).stat().st_size == stored.size
    assert "Traceback" not in server.log()
