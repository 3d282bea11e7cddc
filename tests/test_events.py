"""Live updates over a real uvicorn: what an open page hears through /events, who hears it,
replay after a reconnect, and two worker processes handing events to each other."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from board.config import PROJECT_ROOT
from board.db import live_events, sync_engine, users
from board.setup import create_staff
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    csrf_from,
    database_env,
    free_port,
    login,
    register,
    submit,
    wait_for,
)

# Runs on PostgreSQL too: live events travel through a table polled by every process.
pytestmark = pytest.mark.postgresql


@dataclass
class Received:
    id: str | None
    kind: str
    data: dict


@dataclass
class Listening:
    """An EventSource as a test sees it: events arrive on a queue, read by a thread."""

    client: httpx.Client
    headers: dict = field(default_factory=dict)
    path: str = "/events"
    events: queue.Queue = field(default_factory=queue.Queue)
    status: int | None = None
    opened: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Listening:
        threading.Thread(target=self._read, daemon=True).start()
        assert self.opened.wait(10), "the stream did not open"
        return self

    def _read(self) -> None:
        try:
            with self.client.stream("GET", self.path, headers=self.headers, timeout=30) as reply:
                self.status = reply.status_code
                self.opened.set()
                if reply.status_code != 200:
                    return
                event: dict = {}
                for line in reply.iter_lines():
                    if self.stop.is_set():
                        return
                    if not line:
                        if "kind" in event or "data" in event:
                            self.events.put(
                                Received(
                                    event.get("id"),
                                    event.get("kind", "message"),
                                    json.loads(event.get("data") or "{}"),
                                )
                            )
                        event = {}
                    elif line.startswith("id:"):
                        event["id"] = line[3:].strip()
                    elif line.startswith("event:"):
                        event["kind"] = line[6:].strip()
                    elif line.startswith("data:"):
                        event["data"] = line[5:].strip()
        except Exception:  # closed by the test, or the server went away
            self.opened.set()
        finally:
            self.ended.set()

    def close(self) -> None:
        self.stop.set()
        self.client.close()

    def next(self, kind: str, timeout: float = 5.0, **matching) -> Received:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} event within {timeout} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.kind == kind and all(event.data.get(k) == v for k, v in matching.items()):
                return event

    def kinds_within(self, seconds: float) -> list[Received]:
        time.sleep(seconds)
        found = []
        while not self.events.empty():
            found.append(self.events.get())
        return found


def visitor(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, follow_redirects=False, timeout=30)


def customer(base: str, name: str, email: str) -> httpx.Client:
    person = visitor(base)
    assert register(person, name, email).status_code == 303
    return person


def staff(base: str) -> httpx.Client:
    person = visitor(base)
    assert login(person, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
    return person


def write(person: httpx.Client, body: str) -> int:
    response = submit(person, "/inbox/new", {"body": body}, form_page="/inbox/new")
    assert response.status_code == 303, response.text[:300]
    return int(re.search(r"/inbox/(\d+)", response.headers["location"])[1])


def answer(person: httpx.Client, number: int, body: str, internal: bool = False) -> int:
    data = {"body": body, "status": "pending"} | ({"internal": "1"} if internal else {})
    response = submit(person, f"/staff/t/{number}/reply", data, form_page=f"/staff/t/{number}")
    assert response.status_code == 303, response.text[:300]
    return int(response.headers["location"].rsplit("#m", 1)[1])


@pytest.fixture
def cast(live_server) -> Iterator[tuple[str, httpx.Client, httpx.Client, httpx.Client]]:
    erika = customer(live_server, "Erika Mustermann", "erika@example.com")
    max_ = customer(live_server, "Max Muster", "max@example.com")
    team = staff(live_server)
    yield live_server, erika, max_, team
    for person in (erika, max_, team):
        person.close()


def test_a_staff_answer_reaches_the_customers_open_page_within_a_second(cast):
    _base, erika, _max, team = cast
    number = write(erika, "Wo bleibt mein Paket mit der Kaffeemühle?")
    stream = Listening(erika).start()
    assert stream.status == 200
    started = time.monotonic()
    message_id = answer(team, number, "Es ist **unterwegs**.")
    event = stream.next("message", timeout=1.0, conversation=number)
    assert time.monotonic() - started < 1.0
    assert event.data["id"] == message_id
    assert f'id="m{message_id}"' in event.data["html"]
    assert "<strong>unterwegs</strong>" in event.data["html"]  # rendered as on the page
    assert stream.next("unread", timeout=1.0).data == {"count": 1}


def test_nobody_hears_of_a_conversation_they_may_not_see(cast):
    base, erika, max_, team = cast
    number = write(erika, "Meine Rechnung ist doppelt gekommen.")
    eavesdropper = Listening(max_).start()
    guest = Listening(visitor(base)).start()
    owner = Listening(erika).start()
    answer(team, number, "Eine interne Notiz zur Gutschrift.", internal=True)
    public = answer(team, number, "Wir schreiben Ihnen gut.")
    assert owner.next("message", conversation=number).data["id"] == public  # not the note
    heard = eavesdropper.kinds_within(1.5)
    assert [e for e in heard if e.kind != "notification"] == []
    assert all("Gutschrift" not in json.dumps(e.data) for e in heard)
    assert guest.status == 401  # no session, no guest link: no stream


def test_a_reconnect_with_last_event_id_replays_what_was_missed(cast):
    _base, erika, _max, team = cast
    number = write(erika, "Die Lieferung kam unvollständig an.")
    first = Listening(erika).start()
    seen = answer(team, number, "Erste Antwort.")
    last_id = first.next("message", conversation=number).id
    first.stop.set()
    missed = [answer(team, number, f"Antwort {n}, während das Tab schlief.") for n in (2, 3)]
    again = Listening(erika, headers={"Last-Event-ID": last_id}).start()
    replayed = [again.next("message", conversation=number).data["id"] for _ in missed]
    assert replayed == missed and seen not in replayed


def colleague_logged_in(base: str, settings) -> tuple[httpx.Client, int]:
    """A second staff member, Julia, logged in; her client and her id."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        create_staff(connection, "julia@shop.example", "Julia Brandt", password="julia-passwort-1")
        julia = connection.execute(
            sa.select(users.c.id).where(users.c.email == "julia@shop.example")
        ).scalar_one()
    engine.dispose()
    colleague = visitor(base)
    assert login(colleague, "julia@shop.example", "julia-passwort-1").status_code == 303
    return colleague, julia


def test_staff_see_a_colleague_answering(cast, settings):
    base, erika, _max, team = cast
    colleague, _julia = colleague_logged_in(base, settings)
    watching = Listening(colleague).start()
    number = write(erika, "Kann ich die Bestellung noch ändern?")
    assert watching.next("message", conversation=number)
    page = team.get(f"/staff/t/{number}")
    typed = team.post(f"/staff/t/{number}/typing", data={"csrf_token": csrf_from(page.text)})
    assert typed.status_code == 204
    assert watching.next("typing", conversation=number).data["name"]
    assert team.post(f"/staff/t/{number}/typing", data={}).status_code == 403  # no CSRF
    customer_typing = erika.post(f"/staff/t/{number}/typing", data={})
    assert customer_typing.status_code == 403
    colleague.close()


def test_a_page_older_than_the_kept_events_is_told_to_reload(cast, settings):
    _base, erika, _max, team = cast
    number = write(erika, "Eine Frage von vorgestern.")
    answer(team, number, "Eine Antwort von vorgestern.")
    engine = sync_engine(settings)
    with engine.begin() as connection:
        newest = connection.execute(sa.select(sa.func.max(live_events.c.id))).scalar()
        connection.execute(live_events.delete())  # as the maintenance task does after a day
    engine.dispose()
    answer(team, number, "Eine Antwort von heute.")
    stale = Listening(erika, headers={"Last-Event-ID": "1"}).start()
    assert stale.next("reload")
    current = Listening(erika, headers={"Last-Event-ID": str(newest)}).start()
    assert current.next("message", conversation=number)  # today's answer, replayed
    assert all(e.kind != "reload" for e in current.kinds_within(0.5))


def test_who_may_open_a_stream(cast):
    """A session, or a guest's link for that one conversation; nobody else."""
    base, erika, _max, team = cast
    guest = visitor(base)
    contacted = submit(
        guest,
        "/contact",
        {"name": "Gerd Gast", "email": "gerd@example.com", "body": "Ich habe kein Konto."},
        form_page="/contact",
    )
    assert contacted.status_code == 303
    token = contacted.headers["location"].rsplit("/", 1)[1]
    number = re.search(r"#(\d+)", guest.get(f"/g/{token}").text)[1]
    streams = {
        "nobody": Listening(visitor(base)),
        "made-up link": Listening(visitor(base), path="/events?guest=erfunden"),
        "guest link": Listening(visitor(base), path=f"/events?guest={token}"),
        "customer": Listening(erika),
        "staff": Listening(team),
    }
    for stream in streams.values():
        stream.start()
    assert {name: s.status for name, s in streams.items()} == {
        "nobody": 401,
        "made-up link": 401,
        "guest link": 200,
        "customer": 200,
        "staff": 200,
    }
    message_id = answer(team, int(number), "Antwort für den Gast.")
    assert streams["guest link"].next("message", id=message_id)
    assert all(e.kind != "message" for e in streams["customer"].kinds_within(1.0))
    for name in ("nobody", "made-up link", "guest link"):
        streams[name].close()
    guest.close()


def test_a_stream_ends_when_its_session_is_revoked(cast, monkeypatch):
    from board import live

    monkeypatch.setattr(live, "IDLE_CHECK_SECONDS", 0.5)
    _base, erika, _max, _team = cast
    cookies = dict(erika.cookies)
    stream = Listening(erika).start()
    assert stream.status == 200
    page = erika.get("/account")
    assert erika.post("/logout", data={"csrf_token": csrf_from(page.text)}).status_code == 303
    assert stream.ended.wait(10), "the stream outlived its session"
    erika.cookies.update(cookies)  # the old session cookie, as a browser tab still has it
    assert Listening(erika).start().status == 401


def test_a_customer_who_logged_out_receives_nothing_more_on_a_busy_board(cast, monkeypatch):
    """Busy: events keep coming, so the idle check never runs. Each delivery looks at the
    session when the last look is older than ACCESS_CHECK_SECONDS."""
    from board import live

    monkeypatch.setattr(live, "ACCESS_CHECK_SECONDS", 0.3)
    _base, erika, _max, team = cast
    number = write(erika, "Wann kommt meine Lieferung?")
    stream = Listening(erika).start()
    first = answer(team, number, "Morgen.")
    assert stream.next("message", conversation=number, id=first)
    page = erika.get("/account")
    assert erika.post("/logout", data={"csrf_token": csrf_from(page.text)}).status_code == 303
    time.sleep(0.4)  # past the check interval: the rule is about time
    second = answer(team, number, "Doch erst übermorgen.")
    assert stream.ended.wait(5), "the stream outlived its session"
    delivered = [event.data.get("id") for event in stream.kinds_within(0)]
    assert second not in delivered


def test_a_deactivated_staff_members_open_tab_receives_nothing_more(cast, settings, monkeypatch):
    from board import live

    monkeypatch.setattr(live, "ACCESS_CHECK_SECONDS", 0.3)
    base, erika, _max, team = cast
    colleague, julia = colleague_logged_in(base, settings)
    watching = Listening(colleague).start()
    number = write(erika, "Ist Artikel 4711 wieder lieferbar?")
    assert watching.next("message", conversation=number)
    page = team.get("/staff/team")
    deactivated = team.post(
        f"/staff/team/{julia}", data={"csrf_token": csrf_from(page.text), "active": "0"}
    )
    assert deactivated.status_code == 303
    time.sleep(0.4)
    note = answer(team, number, "Intern: Julia ist nicht mehr im Team.", internal=True)
    assert watching.ended.wait(5), "the stream outlived the staff role"
    assert note not in [event.data.get("id") for event in watching.kinds_within(0)]
    colleague.close()


def test_a_closed_tab_frees_its_place_in_the_hub(cast, app):
    _base, erika, _max, _team = cast
    hub = app.state.hub
    before = len(hub.streams)
    stream = Listening(erika).start()
    assert wait_for(lambda: len(hub.streams) == before + 1)
    stream.stop.set()
    erika.close()  # the connection goes away, as when a tab closes
    assert wait_for(lambda: len(hub.streams) == before, timeout=20)


# --- two worker processes ------------------------------------------------------------------


@contextmanager
def two_workers(tmp_path, **env) -> Iterator[str]:
    """run.py with two uvicorn worker processes on a free port; yields its base URL."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "run.py", "--port", str(port), "--workers", "2"],
        cwd=PROJECT_ROOT,
        env={
            "BOARD_DATA_DIR": str(tmp_path / "data"),
            "BOARD_ADMIN_EMAIL": ADMIN_EMAIL,
            "BOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "BOARD_FLOOD_SECONDS": "0",
            "PATH": "/usr/bin:/bin",
            **database_env(),
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_for(up, timeout=30), "the server did not start"
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def an_answer_reaches_every_stream(base: str, within: float) -> None:
    """Eight streams of one customer, spread over both workers by the kernel; a staff
    answer accepted by either worker must reach all of them."""
    erika = customer(base, "Erika Mustermann", "erika@example.com")
    team = staff(base)
    number = write(erika, "Zwei Prozesse, eine Antwort?")
    streams = [Listening(visitor(base)) for _ in range(8)]
    try:
        for stream in streams:
            stream.client.cookies = erika.cookies
            stream.start()
        message_id = answer(team, number, "Antwort aus irgendeinem Prozess.")
        for stream in streams:
            assert stream.next("message", timeout=within, conversation=number, id=message_id)
    finally:
        for person in (*streams, erika, team):
            person.close()


def test_two_workers_hand_events_to_each_other_through_the_database(tmp_path):
    with two_workers(tmp_path) as base:
        an_answer_reaches_every_stream(base, within=3.0)


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    """A real redis-server on a loopback port, without persistence."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        reason = "redis-server not found (apt-get install --no-install-recommends redis-server)"
        if os.environ.get("BOARD_E2E") == "required":
            pytest.fail(f"{reason}, but BOARD_E2E=required")
        pytest.skip(reason)
    port = free_port()
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answers() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        assert wait_for(answers, timeout=10), "redis-server did not start"
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_two_workers_hand_events_to_each_other_through_a_broker(tmp_path, redis_url):
    # Polling the database once a minute: only the broker can deliver within 3 s.
    with two_workers(
        tmp_path, BOARD_BROADCAST_URL=redis_url, BOARD_EVENTS_POLL_SECONDS="60"
    ) as base:
        an_answer_reaches_every_stream(base, within=3.0)
