"""The application as a whole: first start, schema, access matrix, CSRF, errors, headers."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board.app import create_app
from board.config import Settings
from board.db import (
    absences,
    canned_replies,
    categories,
    posts,
    sync_engine,
    topics,
    users,
    utcnow,
    webhooks,
)
from board.setup import initialize
from board.webhooks import seal
from tests.conftest import ADMIN_EMAIL, csrf_from, database_env, make_settings
from tests.test_inbox import open_conversation

ROOT = Path(__file__).resolve().parent.parent


# --- first start and schema ----------------------------------------------------------------


def test_first_start_creates_admin_categories_and_welcome_topic(settings):
    initialize(settings)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        admin = connection.execute(sa.select(users).where(users.c.role == "admin")).one()
        names = connection.execute(
            sa.select(categories.c.name, categories.c.staff_topics_only)
        ).all()
        welcome = connection.execute(sa.select(topics)).one()
    engine.dispose()
    assert admin.email == ADMIN_EMAIL
    assert dict(names) == {
        "Ankündigungen": True,
        "Shop- und Kundenbereich": False,
        "Bestellung & Versand": False,
        "Technik & Fragen": False,
    }
    assert welcome.title == "Willkommen im Support-Forum" and welcome.pinned


def test_secret_key_is_generated_once_into_the_data_folder(tmp_path):
    first = Settings.from_env({"BOARD_DATA_DIR": str(tmp_path)})
    second = Settings.from_env({"BOARD_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_uploads_live_in_the_data_folder_unless_board_upload_dir_names_another(tmp_path):
    own = Settings.from_env({"BOARD_DATA_DIR": str(tmp_path / "data")})
    assert own.upload_dir == (tmp_path / "data" / "uploads").resolve()
    shared = Settings.from_env(
        {"BOARD_DATA_DIR": str(tmp_path / "data"), "BOARD_UPLOAD_DIR": str(tmp_path / "nfs")}
    )
    assert shared.upload_dir == (tmp_path / "nfs").resolve()


def test_migrations_produce_exactly_the_declared_tables(settings):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from board.db import metadata

    initialize(settings)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        # Alembic cannot reflect expression indexes (`vip DESC`): compared by hand.
        by_hand = {
            "ix_conversations_waiting": "(kind, status, vip DESC, waiting_since, id)",
            "ix_conversations_type_waiting": "(type_id, kind, status, vip DESC, waiting_since, id)",
        }
        found = {}
        for name in by_hand:
            if settings.is_sqlite:
                query = f"SELECT sql FROM sqlite_master WHERE name = '{name}'"
            else:
                query = f"SELECT indexdef FROM pg_indexes WHERE indexname = '{name}'"
            found[name] = connection.exec_driver_sql(query).scalar_one()
    engine.dispose()
    differences = [
        difference
        for difference in differences
        if not (difference[0].endswith("_index") and difference[1].name in by_hand)
    ]
    assert differences == []
    for name, columns in by_hand.items():
        assert found[name].replace("btree ", "").endswith(columns)


@pytest.mark.sqlite_only  # PostgreSQL's sequences never hand an id out twice
def test_ids_that_mark_positions_are_never_reused_after_the_migrations(settings):
    """Live event ids (Last-Event-ID) and search queue ids (each node's position) must not
    come again once the rows are deleted: AUTOINCREMENT, kept through every table rebuild
    a migration makes."""
    initialize(settings)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        for table in ("live_events", "search_queue"):
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).scalar_one()
            assert "AUTOINCREMENT" in sql, sql
    engine.dispose()


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_busy_timeout(client, app):
    database = app.state.db
    assert client.portal.call(database.fetch_val, "PRAGMA journal_mode") == "wal"
    assert client.portal.call(database.fetch_val, "PRAGMA foreign_keys") == 1
    assert client.portal.call(database.fetch_val, "PRAGMA busy_timeout") == 30000


@pytest.mark.sqlite_only  # SQLite's EXPLAIN QUERY PLAN; the indexes are the same migrations
def test_every_list_query_has_an_index(settings):
    initialize(settings)
    engine = sync_engine(settings)
    plans = {
        "category page": "SELECT * FROM topics WHERE category_id = 1 "
        "ORDER BY pinned DESC, last_post_at DESC LIMIT 25",
        "topic page": "SELECT * FROM posts WHERE topic_id = 1 ORDER BY id LIMIT 20",
        "profile": "SELECT * FROM posts WHERE author_id = 1 ORDER BY id DESC LIMIT 20",
        "sessions of a user": "SELECT * FROM sessions WHERE user_id = 1",
        "rate limit": "SELECT count(*) FROM rate_events WHERE bucket = 'a' AND key = 'b' "
        "AND created_at > '2026-01-01'",
    }
    with engine.connect() as connection:
        for name, query in plans.items():
            plan = " ".join(
                row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + query)
            )
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (name, plan)
            assert "TEMP B-TREE" not in plan, (name, plan)
    engine.dispose()


def test_healthz_answers_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_healthz_reports_a_database_that_does_not_answer(tmp_path):
    settings = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path}/missing/dir/x.db")
    with TestClient(create_app(settings)) as broken:
        response = broken.get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "error"}


def test_writes_from_many_clients_at_once_never_fail_with_a_locked_database(people, settings):
    writers = [
        people.customer(f"Kunde{number} Eilig", f"eilig{number}@example.com") for number in range(6)
    ]
    statuses: list[int] = []

    def write(person, number):
        for round_ in range(4):
            response = person.submit(
                "/c/technik-und-fragen/new",
                {"title": f"Frage {number}/{round_}", "body": "Gleichzeitig geschrieben"},
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=write, args=(p, n)) for n, p in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [303] * 24
    engine = sync_engine(settings)
    with engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count())
            .select_from(posts)
            .where(posts.c.body == "Gleichzeitig geschrieben")
        ).scalar_one()
    engine.dispose()
    assert count == 24


# --- the command line ----------------------------------------------------------------------


def run_command(
    args: list[str], data_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "BOARD_DATA_DIR": str(data_dir), "HOME": str(data_dir)}
    env.update(database_env())  # the test's database in the PostgreSQL pass
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_run_py_help_explains_host_port_and_workers(tmp_path):
    result = run_command(["run.py", "--help"], tmp_path)
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "BOARD_"):
        assert option in result.stdout


def test_init_and_create_staff_print_one_time_passwords(tmp_path):
    init = run_command(["-m", "board", "init"], tmp_path)
    assert init.returncode == 0, init.stderr
    assert "admin@localhost" in init.stdout and "One-time password" in init.stdout
    login_line = r"Log in at http://\S+/login .*the staff area is http://\S+/staff"
    assert re.search(login_line, init.stdout)
    again = run_command(["-m", "board", "init"], tmp_path)
    assert "One-time password" not in again.stdout
    staff = run_command(["-m", "board", "create-staff", "Ina@Shop.de", "Ina Support"], tmp_path)
    assert staff.returncode == 0, staff.stderr
    password = staff.stdout.rsplit(":", 1)[1].strip()
    assert len(password) >= 12
    duplicate = run_command(["-m", "board", "create-staff", "ina@shop.de", "Ina"], tmp_path)
    assert duplicate.returncode == 1 and "exists" in duplicate.stderr
    settings = Settings.from_env({"BOARD_DATA_DIR": str(tmp_path), **database_env()})
    with TestClient(create_app(settings), follow_redirects=False) as visitor:
        token = csrf_from(visitor.get("/login").text)
        response = visitor.post(
            "/login", data={"login": "ina@shop.de", "password": password, "csrf_token": token}
        )
        assert response.status_code == 303 and response.headers["location"] == "/account"


def test_demo_fills_a_browsable_forum(tmp_path):
    result = run_command(
        ["-m", "board", "demo", "--customers", "12", "--topics", "15", "--posts", "90"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    settings = Settings.from_env({"BOARD_DATA_DIR": str(tmp_path), **database_env()})
    engine = sync_engine(settings)
    with engine.connect() as connection:
        customers = connection.execute(
            sa.select(sa.func.count()).where(users.c.role == "customer")
        ).scalar_one()
        post_total = connection.execute(sa.select(sa.func.count()).select_from(posts)).scalar()
        topic_total = connection.execute(sa.select(sa.func.count()).select_from(topics)).scalar()
        busiest = connection.execute(
            sa.select(topics.c.id).order_by(topics.c.post_count.desc()).limit(1)
        ).scalar_one()
    engine.dispose()
    assert customers == 12
    assert topic_total == 15 + 1 and post_total == 90 + 1  # plus the welcome topic
    with TestClient(create_app(settings)) as visitor:
        assert visitor.get("/").status_code == 200
        assert visitor.get(f"/t/{busiest}").status_code == 200


# --- access: every named route for every role -----------------------------------------------

ROLES = ("anon", "customer", "other_customer", "staff", "admin")

# route name -> (method, path template, form data, expected status per role in ROLES order)
STAFF_PAGE = (303, 403, 403, 200, 200)
STAFF_POST = (401, 403, 403, 303, 303)
STREAM = ("GET", "/events", None, None)
MATRIX = {
    "index": ("GET", "/", None, (200, 200, 200, 200, 200)),
    "category": ("GET", "/c/technik-und-fragen", None, (200, 200, 200, 200, 200)),
    "new_topic": (
        "POST",
        "/c/technik-und-fragen/new",
        {"title": "Neu", "body": "Text"},
        (401, 303, 303, 303, 303),
    ),
    "topic": ("GET", "/t/{topic}", None, (200, 200, 200, 200, 200)),
    "reply": ("POST", "/t/{topic}/reply", {"body": "Antwort"}, (401, 303, 303, 303, 303)),
    "moderate": ("POST", "/t/{topic}/moderate", {"action": "pin"}, (401, 403, 403, 303, 303)),
    "post": ("GET", "/p/{post}", None, (303, 303, 303, 303, 303)),
    "edit_post": ("POST", "/p/{post}/edit", {"body": "Neu"}, (401, 303, 403, 303, 303)),
    "delete_post": ("POST", "/p/{post}/delete", {}, (401, 403, 403, 303, 303)),
    # The topic's author or staff choose its solution (tests/test_forum_solutions.py).
    "mark_solution": ("POST", "/p/{post}/solution", {"solved": "1"}, (401, 303, 403, 303, 303)),
    # The post is the solution (cast): everyone logged in rates it, but for its author.
    "rate_solution": ("POST", "/p/{post}/helpful", {"helpful": "yes"}, (401, 403, 303, 303, 303)),
    "profile": ("GET", "/u/{author}", None, (200, 200, 200, 200, 200)),
    "register": ("GET", "/register", None, (200, 200, 200, 200, 200)),
    "login": ("GET", "/login", None, (200, 200, 200, 200, 200)),
    "logout": ("POST", "/logout", {}, (303, 303, 303, 303, 303)),
    "account": ("GET", "/account", None, (303, 200, 200, 200, 200)),
    "language": ("POST", "/language", {"locale": "en"}, (303, 303, 303, 303, 303)),
    # Without its signed token the link opens nothing, whoever follows it.
    "unsubscribe": ("GET", "/unsubscribe/{author}/falsch", None, (404, 404, 404, 404, 404)),
    "login_code": ("GET", "/login/code", None, (200, 200, 200, 200, 200)),
    "password_reset": ("GET", "/password/reset", None, (200, 200, 200, 200, 200)),
    # A made-up reset link: a friendly page saying it does not work, for everyone.
    "password_reset_link": ("GET", "/password/reset/falsch", None, (400, 400, 400, 400, 400)),
    "healthz": ("GET", "/healthz", None, (200, 200, 200, 200, 200)),
    # Everyone searches; the index filters what each one finds (tests/test_search.py).
    "search": ("GET", "/search?q=Beitrag&scope=all", None, (200, 200, 200, 200, 200)),
    "search_suggest": (
        "GET",
        "/search/suggest?q=Wie+schreibe+ich+einen+Beitrag",
        None,
        (200, 200, 200, 200, 200),
    ),
    "static": ("GET", "/static/css/board.css", None, (200, 200, 200, 200, 200)),
    "notifications": ("GET", "/notifications", None, (303, 200, 200, 200, 200)),
    "notifications_read_all": ("POST", "/notifications/read-all", {}, (401, 303, 303, 303, 303)),
    # An endless stream: its access is tested over real HTTP in tests/test_events.py.
    "events": STREAM,
    "staff_typing": ("POST", "/staff/t/{number}/typing", {}, (401, 403, 403, 204, 204)),
    "inbox": ("GET", "/inbox", None, (303, 200, 200, 303, 303)),
    "new_message": ("POST", "/inbox/new", {"body": "Frage"}, (401, 303, 303, 403, 403)),
    "read_all": ("POST", "/inbox/read-all", {}, (401, 303, 303, 303, 303)),
    # A live answer on the open page counts as read; staff may call it, it changes nothing.
    "conversation_read": ("POST", "/inbox/{number}/read", {}, (401, 200, 404, 200, 200)),
    "conversation": ("GET", "/inbox/{number}", None, (303, 200, 404, 303, 303)),
    "conversation_reply": (
        "POST",
        "/inbox/{number}/reply",
        {"body": "Antwort"},
        (401, 303, 404, 403, 403),  # staff answer from the queue
    ),
    # Only the request's customer closes it; staff set statuses from the queue.
    "conversation_done": ("POST", "/inbox/{number}/done", {}, (401, 303, 404, 403, 403)),
    "attachment": ("GET", "/attachments/{attachment}/a.pdf", None, (404, 200, 404, 200, 200)),
    "contact": ("GET", "/contact", None, (200, 303, 303, 200, 200)),
    "guest_conversation": ("GET", "/g/{token}", None, (200, 200, 200, 200, 200)),
    "guest_reply": ("POST", "/g/{token}/reply", {"body": "Gast"}, (303, 303, 303, 303, 303)),
    # Only the customer account with the guest's address may take it (tests/test_inbox.py).
    "guest_join": ("POST", "/g/{token}/join", {}, (401, 403, 403, 403, 403)),
    # A mail link opens its conversation for whoever holds it, and only a link this site
    # signed (who may use a real one: tests/test_mail_links.py).
    "mail_link": ("GET", "/m/1.falsch", None, (404, 404, 404, 404, 404)),
    "mail_link_reply": ("POST", "/m/1.falsch/reply", {"body": "x"}, (404, 404, 404, 404, 404)),
    # Everyone logged in may end the links mailed to them (staff get none: nothing changes).
    "revoke_mail_links": ("POST", "/account/mail-links/revoke", {}, (401, 303, 303, 303, 303)),
    "staff_revoke_mail_links": ("POST", "/staff/t/{number}/mail-links/revoke", {}, STAFF_POST),
    # The staff area: a login for visitors, 403 for customers.
    "staff_queue": ("GET", "/staff", None, STAFF_PAGE),
    "staff_queue_live": ("GET", "/staff/queue/live", None, STAFF_PAGE),
    "staff_home": ("GET", "/staff/home", None, STAFF_PAGE),
    "staff_conversation": ("GET", "/staff/t/{number}", None, STAFF_PAGE),
    "staff_reply": ("POST", "/staff/t/{number}/reply", {"body": "Antwort"}, STAFF_POST),
    "staff_update": ("POST", "/staff/t/{number}/update", {"status": "pending"}, STAFF_POST),
    "staff_customers": ("GET", "/staff/customers?q=Erika", None, STAFF_PAGE),
    "staff_customer": ("GET", "/staff/customers/{author}", None, STAFF_PAGE),
    # Everyone logged in downloads their own data; staff download a customer's.
    "account_export": ("GET", "/account/data.zip", None, (303, 200, 200, 200, 200)),
    "staff_customer_export": ("GET", "/staff/customers/{author}/data.zip", None, STAFF_PAGE),
    # Without the customer number typed as confirmation nothing is erased (its GET, the
    # confirmation page, is tested in tests/test_privacy.py).
    "staff_customer_erase": (
        "POST",
        "/staff/customers/{author}/erase",
        {},
        (401, 403, 403, 400, 400),
    ),
    "canned_replies": ("GET", "/staff/replies", None, STAFF_PAGE),
    "canned_reply": ("GET", "/staff/replies/{canned}", None, STAFF_PAGE),
    # The first staff member deletes it; the admin after them finds nothing left.
    "canned_reply_delete": (
        "POST",
        "/staff/replies/{canned}/delete",
        {},
        (401, 403, 403, 303, 404),
    ),
    "announce": ("GET", "/staff/announce", None, STAFF_PAGE),
    "invoice": ("GET", "/staff/invoice", None, STAFF_PAGE),
    "staff_write": ("GET", "/staff/write", None, STAFF_PAGE),
    "publish": ("GET", "/staff/t/{solved}/publish", None, STAFF_PAGE),
    "team": ("GET", "/staff/team", None, STAFF_PAGE),
    "staff_stats": ("GET", "/staff/stats", None, STAFF_PAGE),
    "staff_stats_conversations": ("GET", "/staff/stats/conversations", None, STAFF_PAGE),
    "team_create": (
        "POST",
        "/staff/team/new",
        {"email": "neu@shop.example", "name": "Neu", "role": "staff"},
        (401, 403, 403, 403, 200),  # admins only; the page shows the one-time password
    ),
    "team_update": (
        "POST",
        "/staff/team/{staff}",
        {"title": "Versand"},
        (401, 403, 403, 403, 303),
    ),
    "team_availability": ("POST", "/staff/team/availability", {"accepting": "0"}, STAFF_POST),
    # Staff set their own areas of responsibility; admins anyone's ({staff} is the staff's).
    "team_areas": ("POST", "/staff/team/{staff}/areas", {"types": "1"}, STAFF_POST),
    "request_types": ("GET", "/staff/types", None, STAFF_PAGE),
    "request_type_update": (
        "POST",
        "/staff/types/1",
        {"name": "Bestellung", "active": "1"},
        STAFF_POST,
    ),
    "team_absence_add": (
        "POST",
        "/staff/team/absences",
        {"starts": "2099-01-01", "ends": "2099-01-02", "note": "Urlaub"},
        STAFF_POST,
    ),
    # Each names their own deputy (empty: the rotation) and dismisses their own notice.
    "team_cover": (
        "POST",
        "/staff/team/cover",
        {"deputy": "", "availability_note": "Mo–Mi vormittags"},
        STAFF_POST,
    ),
    "handovers_dismiss": ("POST", "/staff/handovers/dismiss", {"up_to": "0"}, STAFF_POST),
    # Staff read the notice board where it is shown; only admins change it.
    "staff_notices": ("GET", "/staff/notices", None, (303, 403, 403, 403, 200)),
    # Webhooks are for admins alone; removing one twice finds nothing the second time.
    "webhooks": ("GET", "/staff/webhooks", None, (303, 403, 403, 403, 200)),
    "webhook_secret": (
        "POST",
        "/staff/webhooks/{webhook}/secret",
        {},
        (401, 403, 403, 403, 200),
    ),
    "webhook_remove": (
        "POST",
        "/staff/webhooks/{webhook}/remove",
        {},
        (401, 403, 403, 403, 303),
    ),
    # The admin's absence: staff may not remove it, the admin may.
    "team_absence_delete": (
        "POST",
        "/staff/team/absences/{absence}/delete",
        {},
        (401, 403, 403, 403, 303),
    ),
}


def test_every_named_route_is_in_the_access_matrix(app):
    names = {route.name for route in app.routes}
    assert names == set(MATRIX)


@pytest.fixture
def cast(people, client, settings):
    """One person per role, and a topic with a reply written by `customer`."""
    members = {
        "anon": client,
        "customer": people.customer(),
        "other_customer": people.customer("Max Muster"),
        "staff": people.staff(admin=False),
        "admin": people.staff(),
    }
    author = members["customer"]
    response = author.submit(
        "/c/technik-und-fragen/new", {"title": "Matrix", "body": "Erster Beitrag"}
    )
    topic_id = int(response.headers["location"].rsplit("/", 1)[1])
    author.submit(f"/t/{topic_id}/reply", {"body": "Zweiter Beitrag"})
    post_id = max(int(part) for part in _post_ids(client.get(f"/t/{topic_id}").text))
    author.submit(f"/p/{post_id}/solution", {"solved": "1"})
    inbox_page = author.get("/inbox/new").text
    written = author.client.post(
        "/inbox/new",
        data={"csrf_token": csrf_from(inbox_page), "body": "Meine Rechnung"},
        files=[("attachments", ("a.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"))],
    )
    number = int(written.headers["location"].rsplit("/", 1)[1])
    attachment = int(re.search(r"/attachments/(\d+)/", author.get(f"/inbox/{number}").text)[1])
    contact_page = client.get("/contact").text
    guest = client.post(
        "/contact",
        data={
            "csrf_token": csrf_from(contact_page),
            "name": "Gast",
            "email": "gast@example.com",
            "body": "Gastfrage",
        },
    )
    admin = members["admin"]
    admin.submit("/staff/replies", {"shortcut": "gruss", "title": "Gruß", "body": "Viele Grüße"})
    solved = open_conversation(members["other_customer"], "Schon erledigt")
    admin.submit(f"/staff/t/{solved}/update", {"status": "solved"})
    admin.submit(
        "/staff/team/absences", {"starts": "2099-03-01", "ends": "2099-03-02", "note": "Messe"}
    )
    engine = sync_engine(settings)
    with engine.begin() as connection:
        # Loopback, which webhooks may not reach by default: nothing leaves the machine.
        webhook = connection.execute(
            webhooks.insert()
            .values(url="http://127.0.0.1:9/hook", secret=seal(settings, "x"), created_at=utcnow())
            .returning(webhooks.c.id)
        ).scalar_one()
    with engine.connect() as connection:
        canned = connection.execute(sa.select(sa.func.max(canned_replies.c.id))).scalar_one()
        absence = connection.execute(sa.select(sa.func.max(absences.c.id))).scalar_one()
    engine.dispose()
    ids = {
        "topic": topic_id,
        "post": post_id,
        "author": author.user_id,
        "number": number,
        "attachment": attachment,
        "token": guest.headers["location"].rsplit("/", 1)[1],
        "canned": canned,
        "solved": solved,
        "staff": members["staff"].user_id,
        "absence": absence,
        "webhook": webhook,
    }
    return members, ids


def _post_ids(html: str) -> list[str]:
    return re.findall(r'id="p(\d+)"', html)


@pytest.mark.parametrize("route_name", sorted(n for n, row in MATRIX.items() if row is not STREAM))
def test_access_matrix(cast, route_name):
    members, ids = cast
    method, template, data, expected = MATRIX[route_name]
    path = template.format(**ids)
    for role, status in zip(ROLES, expected, strict=True):
        member = members[role]
        visitor = member if role == "anon" else member.client
        if method == "GET":
            response = visitor.get(path)
        else:
            token = csrf_from(visitor.get("/").text)
            response = visitor.post(path, data={"csrf_token": token, **data})
        assert response.status_code == status, (role, route_name, response.text[:300])


POST_ROUTES = sorted(name for name, spec in MATRIX.items() if spec[0] == "POST") + [
    "register",
    "login",
    "account",
    "contact",
    "login_code",
    "password_reset",
]


@pytest.mark.parametrize("route_name", POST_ROUTES)
def test_every_post_without_a_csrf_token_is_refused(cast, route_name):
    members, ids = cast
    paths = {
        "register": "/register",
        "login": "/login",
        "account": "/account",
        "contact": "/contact",
        "login_code": "/login/code",
        "password_reset": "/password/reset",
    }
    path = paths.get(route_name) or MATRIX[route_name][1].format(**ids)
    data = MATRIX[route_name][2] if route_name in MATRIX and MATRIX[route_name][2] else {}
    # Customers are sent from the contact form to their inbox; guests use it.
    roles = ("anon", "admin") if route_name == "contact" else ("customer", "admin")
    for role in roles:
        visitor = members[role] if role == "anon" else members[role].client
        response = visitor.post(path, data={**data, "name": "x", "body": "x"})
        assert response.status_code == 403, (role, route_name)
    # Nothing changed: still logged in, topic not pinned, the post not deleted.
    assert "Abmelden" in members["admin"].get("/").text
    page = members["admin"].get(f"/t/{ids['topic']}").text
    assert "Angepinnt" not in page and "Gelöscht" not in page


# --- errors and headers ---------------------------------------------------------------------


def test_server_error_shows_a_friendly_page_without_a_stack_trace(settings):
    initialize(settings)
    app = create_app(settings)

    async def broken(request):
        raise RuntimeError("secret internals")

    app.add_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as visitor:
        response = visitor.get("/broken")
    assert response.status_code == 500
    assert "Bei uns ist etwas schiefgegangen" in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert 'class="site-header"' in response.text


def test_security_headers_on_every_page(client, people):
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "base-uri 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in response.headers  # public pages may be cached
    erika = people.customer()
    assert erika.get("/").headers["cache-control"] == "no-store"  # private pages not


def test_templates_have_no_inline_scripts_or_handlers():
    import re

    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        if template.parent.name == "mail":
            # Mail is read in mail programs, not under our CSP; they drop <style> blocks
            # and honour only inline styles. Still no scripts or handlers.
            assert "<script" not in text and not re.search(r"\son[a-z]+=", text), template
            continue
        # Data blocks (type="application/json") never run: scripts read them as text.
        code = r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>"
        assert not re.search(code, text), template
        assert not re.search(r"\son[a-z]+=", text), template
        assert "style=" not in text, template


def test_templates_are_loaded_with_the_environments_globals_alone(people):
    """board/web.py's SharedGlobalsTemplate reuses an imported macro module on every page,
    which is right only while no template is loaded with globals of its own."""
    loading = re.compile(r"(get_template|select_template|get_or_select_template)\([^)]*globals")
    for source in (ROOT / "board").rglob("*.py"):
        assert not loading.search(source.read_text()), source
    # And the macros imported that way still show each page's own values.
    erika = people.customer()
    page = erika.get("/inbox/new").text
    assert 'name="body"' in page and f"{erika.customer_number}<" in page


def test_static_stylesheet_is_served(client):
    response = client.get("/static/css/board.css")
    assert response.status_code == 200 and "@media" in response.text


def test_method_not_allowed_gets_a_page_not_a_trace(client):
    response = client.get("/logout")
    assert response.status_code == 405
    assert 'class="site-header"' in response.text


def test_housekeeping_forgets_old_rate_events_expired_sessions_and_old_mail(client, app, settings):
    from datetime import timedelta

    from board import maintenance
    from board.db import login_tokens, outbox, rate_events, sessions, utcnow
    from tests.conftest import login

    login(client, ADMIN_EMAIL, "wrong-password-1")  # one fresh rate event
    login(client, ADMIN_EMAIL, "admin-passwort-123")  # one live session
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            rate_events.insert().values(
                bucket="login-address", key="old", created_at=utcnow() - timedelta(days=2)
            )
        )
        connection.execute(
            sessions.insert().values(
                id_hash="x" * 64,
                user_id=1,
                created_at=utcnow() - timedelta(days=40),
                last_seen_at=utcnow() - timedelta(days=40),
                expires_at=utcnow() - timedelta(days=10),
            )
        )
        for purpose, expires_in in (("code", -1), ("reset", 1)):
            connection.execute(
                login_tokens.insert().values(
                    user_id=1,
                    purpose=purpose,
                    secret_hash="h" * 64,
                    created_at=utcnow(),
                    expires_at=utcnow() + timedelta(hours=expires_in),
                )
            )
        for template, sent_days_ago in (("reply", 40), ("invoice", 2), ("digest", None)):
            sent_at = utcnow() - timedelta(days=sent_days_ago) if sent_days_ago else None
            connection.execute(
                outbox.insert().values(
                    template=template,
                    to_address="kunde@example.com",
                    params='{"number": 1001}',
                    created_at=utcnow() - timedelta(days=41),
                    next_attempt_at=utcnow() + timedelta(days=1),  # the sender leaves it
                    sent_at=sent_at,
                )
            )
    client.portal.call(maintenance.run_once, app.state.db, app.state.settings)
    with engine.connect() as connection:
        keys = connection.execute(sa.select(rate_events.c.key)).scalars().all()
        hashes = connection.execute(sa.select(sessions.c.id_hash)).scalars().all()
        purposes = connection.execute(sa.select(login_tokens.c.purpose)).scalars().all()
        mails = connection.execute(sa.select(outbox.c.template)).scalars().all()
    engine.dispose()
    assert keys == ["testclient"]  # the fresh failure's address; success cleared the account
    assert "x" * 64 not in hashes and len(hashes) == 1
    assert purposes == ["reset"]  # the expired code is gone
    assert sorted(mails) == ["digest", "invoice"]  # unsent mail is never dropped


def test_quick_start_and_stop_leaves_no_connection_open(settings):
    import gc
    import warnings

    initialize(settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(15):
            # Shutdown cancels the background workers while they may be opening a connection.
            with TestClient(create_app(settings)):
                pass
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


@pytest.mark.sqlite_only  # the fast path is SQLite's; PostgreSQL reads through `databases`
def test_fast_reads_match_what_databases_returns(client, app, people):
    from board.db import fetch_row, fetch_rows, posts

    staff = people.staff()
    for title in ("Erstes", "Zweites"):
        staff.submit("/c/technik-und-fragen/new", {"title": title, "body": "Text"})
    database = app.state.db

    def query(topic_id, deleted_ok):
        return (
            sa.select(topics, categories.c.staff_only, categories.c.name.label("category"))
            .select_from(topics.join(categories, categories.c.id == topics.c.category_id))
            .where(topics.c.id >= topic_id, sa.true() if deleted_ok else topics.c.pinned.is_(False))
            .order_by(topics.c.id)
        )

    for topic_id, deleted_ok in ((1, True), (2, False), (3, True)):  # one shape, new values
        fast = client.portal.call(fetch_rows, database, query(topic_id, deleted_ok))
        slow = client.portal.call(database.fetch_all, query(topic_id, deleted_ok))
        assert [tuple(row) for row in fast] == [tuple(row._mapping.values()) for row in slow]
        assert all(isinstance(row.created_at, type(slow[0].created_at)) for row in fast)
        assert all(row.pinned in (True, False) for row in fast)
    ids = sa.select(posts.c.id).where(posts.c.id.in_([1, 2, 3])).order_by(posts.c.id)
    assert [row.id for row in client.portal.call(fetch_rows, database, ids)] == [1, 2, 3]
    missing = sa.select(topics).where(topics.c.id == 999)
    assert client.portal.call(fetch_row, database, missing) is None
