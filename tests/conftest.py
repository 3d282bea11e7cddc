"""Fixtures: a fresh app on a real database per test, clients, and people who act.

`python -m pytest` runs every test on a SQLite file in the test's own folder, and the
tests marked `postgresql` (their SQL differs between the databases; the README lists
them) once more on a fresh database of a throwaway PostgreSQL cluster (tests/postgres.py).
`--database=sqlite` leaves PostgreSQL out; `--database=postgresql` runs every test on
PostgreSQL only, but for those marked `sqlite_only` (SQLite's own files and pragmas, or a
source that must be SQLite) and `own_database` (they start their own PostgreSQL).

Each database starts as a copy of one installed in the session: `initialize` (the
migrations, the admin, the default content) runs once per process, not once per test."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board import mail, security
from board.app import create_app, postman_for
from board.config import Settings
from board.db import categories, sync_engine, users
from board.setup import initialize

ADMIN_EMAIL = "chefin@example.com"
ADMIN_PASSWORD = "admin-passwort-123"
PASSWORD = "kunden-passwort-1"
CSRF_PATTERN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


# argon2 at its production cost takes ~0.2 s of CPU a hash here, and nearly every test
# registers or logs somebody in: minutes of the suite. Tests hash at argon2's lowest cost;
# a hash carries its own cost, so the production-cost hashes of run.py processes verify
# alike. `production_password_cost` puts the real cost back for the tests about it.
PRODUCTION_PASSWORDS = security.password_context
security.password_context = PRODUCTION_PASSWORDS.copy(
    argon2__memory_cost=64, argon2__time_cost=1, argon2__parallelism=1
)
security._DUMMY_HASH = security.password_context.hash("dummy")


@pytest.fixture
def production_password_cost(monkeypatch) -> None:
    monkeypatch.setattr(security, "password_context", PRODUCTION_PASSWORDS)
    monkeypatch.setattr(security, "_DUMMY_HASH", PRODUCTION_PASSWORDS.hash("dummy"))


def pytest_configure(config) -> None:
    """SIGTERM stops the run as Ctrl-C does, fixtures torn down: the throwaway PostgreSQL
    cluster, redis-server and run.py processes stop with it instead of staying behind."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgresql"),
        default=None,
        help="only SQLite, or every test on a throwaway PostgreSQL cluster; unset: every "
        "test on SQLite and those marked `postgresql` on PostgreSQL too",
    )


def databases_for(config, node) -> list[str]:
    chosen = config.getoption("database")
    if chosen is not None:
        return [chosen]
    both = node.get_closest_marker("postgresql") and not (
        node.get_closest_marker("sqlite_only") or node.get_closest_marker("own_database")
    )
    return ["sqlite", "postgresql"] if both else ["sqlite"]


def pytest_generate_tests(metafunc) -> None:
    kinds = databases_for(metafunc.config, metafunc.definition)
    if kinds != ["sqlite"]:
        metafunc.parametrize("database_kind", kinds, indirect=True)


@pytest.fixture
def database_kind(request) -> str:
    """The database this run of the test uses: "sqlite" or "postgresql"."""
    return getattr(request, "param", "sqlite")


# The database of the running test in the PostgreSQL pass, set by `test_database`; unset
# on SQLite, where each data folder holds its own. An environment variable, not a global:
# pytest imports this file as `conftest` and the tests import it as `tests.conftest`.
TEST_DATABASE_VARIABLE = "BOARD_TEST_DATABASE_URL"


def database_env() -> dict[str, str]:
    """BOARD_DATABASE_URL for settings and run.py processes, in the PostgreSQL pass."""
    url = os.environ.get(TEST_DATABASE_VARIABLE)
    return {"BOARD_DATABASE_URL": url} if url else {}


def make_settings(data_dir: Path, **overrides) -> Settings:
    env = {
        "BOARD_DATA_DIR": str(data_dir),
        "BOARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "BOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BOARD_FLOOD_SECONDS": "0",
        **database_env(),
    }
    return Settings.from_env(env, **overrides)


@pytest.fixture(scope="session")
def postgres_server(request) -> Iterator[str]:
    """One throwaway cluster for the session; each test takes a database of its own."""
    from tests.postgres import throwaway_cluster

    with throwaway_cluster(free_port()) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str, tmp_path_factory) -> str:
    """The name of a database on the cluster that `initialize` has installed."""
    from tests.postgres import TEMPLATE, create_database, database_url

    create_database(postgres_server, TEMPLATE)
    url = database_url(postgres_server, TEMPLATE)
    initialize(make_settings(tmp_path_factory.mktemp("template") / "data", database_url=url))
    return TEMPLATE


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file that `initialize` has installed, checkpointed: whole in one file."""
    settings = make_settings(tmp_path_factory.mktemp("template") / "data")
    initialize(settings)
    return settings.sqlite_path


@pytest.fixture(autouse=True)
def test_database(request, database_kind: str) -> Iterator[None]:
    """On PostgreSQL: a fresh database for this test, dropped after it. A copy of the
    installed template for tests that take the `app`; empty for those that install
    (or refuse to) themselves."""
    if database_kind != "postgresql":
        yield
        return
    from tests.postgres import fresh_database

    server = request.getfixturevalue("postgres_server")
    template = (
        request.getfixturevalue("postgres_template") if "app" in request.fixturenames else None
    )
    with fresh_database(server, template) as url:
        os.environ[TEST_DATABASE_VARIABLE] = url
        try:
            yield
        finally:
            del os.environ[TEST_DATABASE_VARIABLE]


@pytest.fixture
def settings_overrides() -> dict:
    """Tests override single settings with `@pytest.mark.parametrize` or by redefining this."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, settings_overrides: dict) -> Settings:
    return make_settings(tmp_path / "data", **settings_overrides)


@pytest.fixture
def app(request, settings: Settings):
    if settings.is_sqlite and not settings.sqlite_path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), settings.sqlite_path)
    initialize(settings)  # on the copy: checks the schema's version, creates nothing (~15 ms)
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def new_client(app, client: TestClient) -> Callable[[], TestClient]:
    """Another visitor with its own cookies, served by the same running app."""

    def make() -> TestClient:
        other = TestClient(app, follow_redirects=False)
        other.portal = client.portal  # the lifespan's event loop, which owns the DB pool
        return other

    return make


def count_statements(app, client: TestClient, statements: list[str]) -> None:
    """Records the SQL of what follows; the search queue is indexed first, so only the
    pages' own statements (and the background tasks' idle looks) are counted."""
    from board.db import statement_listener
    from board.search.indexing import drain_all

    client.portal.call(drain_all, app.state.db, app.state.settings)
    statement_listener(app.state.db, statements.append)


def index_now(app, client: TestClient) -> None:
    """Indexes everything written so far, as the background task would within seconds.

    Waits for the index that the task builds at start, and for a round of the task's own
    that holds Whoosh's write lock right now (drain_all then settles nothing). Not
    Whoosh's `exists_in`: it opens the table of contents, which a commit meanwhile may
    have replaced (FileNotFoundError)."""
    from board.search.indexing import drain_all, index_is_present, nothing_left_to_index

    database, settings = app.state.db, app.state.settings
    wait_for(lambda: index_is_present(settings))

    def settled() -> bool:
        client.portal.call(drain_all, database, settings)
        return client.portal.call(nothing_left_to_index, database, settings)

    wait_for(settled)


def page_selects(statements: list[str]) -> list[str]:
    """The SELECTs a page ran; the background tasks' (mail, daily jobs, search) run beside."""
    background = (
        "FROM outbox",
        "FROM scheduled_jobs",
        "FROM search_queue",
        "FROM search_nodes",
        "FROM stats_dirty",  # the statistics' days to recompute (board/staff/stats_days.py)
        "FROM webhook_deliveries",  # board/webhook_sender.py
        "handed_over_at IS NULL",  # absences that begin (board/staff/handover.py)
    )
    return [
        sql
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT") and not any(b in sql for b in background)
    ]


def csrf_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def submit(client: TestClient, path: str, data: dict, form_page: str = "/", **kwargs):
    """Posts a form the way a browser does: with the CSRF token of a page it just loaded."""
    token = csrf_from(client.get(form_page).text)
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


@dataclass
class Person:
    client: TestClient
    user_id: int
    email: str
    password: str
    customer_number: int | None = None

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def submit(self, path: str, data: dict, **kwargs):
        return submit(self.client, path, data, **kwargs)


def register(client: TestClient, name: str, email: str, password: str = PASSWORD):
    return submit(
        client,
        "/register",
        {"name": name, "email": email, "password": password},
        form_page="/register",
    )


def login(client: TestClient, login_value: str, password: str):
    return submit(
        client, "/login", {"login": login_value, "password": password}, form_page="/login"
    )


def user_row(settings: Settings, email: str):
    engine = sync_engine(settings)
    with engine.connect() as connection:
        row = connection.execute(sa.select(users).where(users.c.email == email.lower())).first()
    engine.dispose()
    return row


@pytest.fixture
def people(settings: Settings, new_client):
    """Makes registered, logged-in customers and staff, each in their own client."""

    def customer(name: str = "Erika Mustermann", email: str | None = None) -> Person:
        email = email or f"{name.split()[0].lower()}@example.com"
        visitor = new_client()
        response = register(visitor, name, email)
        assert response.status_code == 303, response.text
        row = user_row(settings, email)
        return Person(visitor, row.id, email, PASSWORD, row.customer_number)

    def staff(admin: bool = True) -> Person:
        visitor = new_client()
        if admin:
            email, password = ADMIN_EMAIL, ADMIN_PASSWORD
        else:
            from board.setup import create_staff

            email, password = "support@example.com", "support-passwort-1"
            engine = sync_engine(settings)
            with engine.begin() as connection:
                create_staff(connection, email, "Sven Support", password=password)
            engine.dispose()
        assert login(visitor, email, password).status_code == 303
        return Person(visitor, user_row(settings, email).id, email, password)

    class People:
        pass

    made = People()
    made.customer = customer
    made.staff = staff
    return made


def in_english(person: Person) -> Person:
    """Messages are asserted in English, the message ids, whatever the catalog says."""
    person.client.headers["accept-language"] = "en"
    return person


@pytest.fixture
def admin(people) -> Person:
    """The setup admin, reading English."""
    return in_english(people.staff(admin=True))


@pytest.fixture
def sven(people) -> Person:
    """A staff member who is no admin, reading English."""
    return in_english(people.staff(admin=False))


def category_id(settings: Settings, slug: str) -> int:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        value = connection.execute(
            sa.select(categories.c.id).where(categories.c.slug == slug)
        ).scalar_one()
    engine.dispose()
    return value


# --- the real server and browser for end-to-end tests -------------------------------------

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def pytest_collection_modifyitems(config, items):
    """Browser tests last: sync Playwright leaves an event loop behind in this process."""

    def uses_browser(item) -> bool:
        return bool({"page", "browser"} & set(getattr(item, "fixturenames", ())))

    items.sort(key=uses_browser)
    if config.getoption("database") == "postgresql":
        left_out = [i for i in items if {"sqlite_only", "own_database"} & set(i.keywords)]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if item not in left_out]
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM}"
        if os.environ.get("BOARD_E2E") == "required":
            raise pytest.UsageError(f"{reason}, but BOARD_E2E=required")
        for item in items:
            if uses_browser(item):
                item.add_marker(pytest.mark.skip(reason=f"{reason} (install Debian's chromium)"))


@pytest.fixture(scope="session")
def base_url() -> None:
    """Pages open the live server's absolute URLs. Defined here, pytest-playwright's own
    fallback is never set up: a fixture on a class instance, which pytest 9 deprecates
    (PytestRemovedIn10Warning, an error under `filterwarnings = error`)."""
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # A German shopper's browser: Accept-Language decides the page language.
    return {**browser_context_args, "locale": "de-DE", "accept_downloads": True}


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app under a real uvicorn on a loopback port this test bound itself."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A bounded shutdown: a browser that hangs with a stream open does not keep this server
    # (and its background tasks, on a database the teardown drops) alive.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        from sse_starlette.sse import AppStatus

        # As on SIGINT: sse-starlette hooks uvicorn's handle_exit to end the open event
        # streams at once, so the graceful shutdown does not wait 5 s for their clients.
        # Its flag is process-wide: put back for the next test's server.
        server.handle_exit(signal.SIGINT, None)
        try:
            thread.join(timeout=10)
        finally:
            AppStatus.should_exit = False
        sock.close()


# --- mail ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SMTPCollector:
    """An aiosmtpd handler that keeps every message it receives, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


def start_smtp(port: int, handler: SMTPCollector | None = None):
    from aiosmtpd.controller import Controller

    controller = Controller(
        handler or SMTPCollector(),
        hostname="127.0.0.1",
        port=port,
        server_hostname="localhost",
        ready_timeout=10,
    )
    controller.start()
    return controller


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp(smtp_port: int) -> Iterator[SMTPCollector]:
    """A real SMTP server on loopback; the app's settings point at it (see smtp_settings)."""
    controller = start_smtp(smtp_port)
    try:
        yield controller.handler
    finally:
        controller.stop()


def wait_for(condition: Callable[[], object], timeout: float = 10.0):
    """Polls until `condition()` is truthy: the sender runs in the app's own task."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return result


@dataclass
class Mailbox:
    """Mail written to <data>/outbox/*.eml (no SMTP host set), and a way to send it now."""

    app: object
    client: TestClient
    settings: Settings

    def drain(self, now=None) -> int:
        return self.client.portal.call(mail.run_once, self.app.state.db, postman_for(self.app), now)

    def messages(self) -> list[email.message.EmailMessage]:
        self.drain()
        # The site's own mail task may hold rows right now (claimed, their files being
        # written): under load the test read the folder before they were there. The folder
        # is read once no round holds an unsent row (or after 5 s, and then as it is).
        deadline = time.monotonic() + 5
        while self._held_by_a_round() and time.monotonic() < deadline:
            time.sleep(0.05)
        folder = self.settings.data_dir / "outbox"
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(folder.glob("*.eml"))
        ]

    def _held_by_a_round(self) -> bool:
        from board.db import outbox

        engine = sync_engine(self.settings)
        try:
            with engine.connect() as connection:
                held = connection.execute(
                    sa.select(outbox.c.id)
                    .where(
                        outbox.c.claim.is_not(None),
                        outbox.c.sent_at.is_(None),
                        outbox.c.failed_at.is_(None),
                    )
                    .limit(1)
                ).first()
        finally:
            engine.dispose()
        return held is not None

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [message for message in self.messages() if address in message["To"]]


@pytest.fixture
def mailbox(app, client, settings) -> Mailbox:
    return Mailbox(app, client, settings)


def mail_text(message: email.message.EmailMessage) -> str:
    """Both parts of a mail, decoded: what a reader could see."""
    return "\n".join(
        part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
    )
