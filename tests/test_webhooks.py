"""Webhooks: an admin registers a URL, conversation changes reach a real HTTP receiver on
loopback as signed JSON, failures are retried and logged, and nobody else gets in."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
import trustme

from board import webhook_sender, webhooks
from board.config import Settings
from board.db import sync_engine, utcnow, webhook_deliveries
from board.db import webhooks as webhooks_table
from tests.conftest import csrf_from, free_port, wait_for
from tests.test_inbox import open_conversation

SECRET_PATTERN = re.compile(r'<code class="webhook-secret">([0-9a-f]{64})</code>')


@pytest.fixture
def settings_overrides() -> dict:
    # The receiver listens on loopback, which webhooks reach only when the operator says so;
    # retries wait an hour, so that only the test's own rounds try again.
    return {"webhook_allow_networks": ("127.0.0.1/32",), "webhook_retry_seconds": 3600}


class Receiver:
    """A real HTTP server on loopback that keeps every request and answers `status`; with
    `tls`, an HTTPS server under `name`."""

    def __init__(
        self, address: str = "127.0.0.1", tls: ssl.SSLContext | None = None, name: str = ""
    ) -> None:
        self.requests: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

        self.server = Server((address, 0), Handler)
        port = self.server.server_address[1]
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{name or address}:{port}/hooks/crm?source=board"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[str]:
        return [json.loads(request["body"])["event"] for request in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running(Receiver())


def running(receiver: Receiver) -> Iterator[Receiver]:
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def localhost() -> str:
    """The address the sender connects to for "localhost": the first one it resolves to."""
    return socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0]


@pytest.fixture
def company_ca(tmp_path, monkeypatch) -> trustme.CA:
    """A CA of the operator's own, trusted the way the sender reads it: SSL_CERT_FILE."""
    ca = trustme.CA()
    pem = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    return ca


def https_receiver(ca: trustme.CA, certified_name: str) -> Receiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(certified_name).configure_cert(context)
    return Receiver(localhost(), tls=context, name="localhost")


LOOPBACK_BOTH = {
    "webhook_allow_networks": ("127.0.0.1/32", "::1/128"),
    "webhook_retry_seconds": 3600,
}


@pytest.mark.parametrize("settings_overrides", [LOOPBACK_BOTH])
def test_an_https_receiver_is_reached_by_its_name_and_its_certificate_is_checked(
    people, company_ca, app, client
):
    """The sender connects to the address it checked, yet TLS goes by the URL's name: the
    server's certificate must be valid for "localhost" and come from a trusted CA."""
    admin = people.staff()
    for good in running(https_receiver(company_ca, "localhost")):
        secret = registered_secret(admin, good.url)
        open_conversation(people.customer(), "Rechnung fehlt")
        wait_for(lambda: good.requests)
        request = good.requests[0]
        assert request["headers"]["Host"] == good.url.split("/")[2]  # localhost:<port>
        timestamp = request["headers"]["X-Supportboard-Timestamp"]
        expected = hmac.new(
            secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256
        )
        assert request["headers"]["X-Supportboard-Signature"] == "sha256=" + expected.hexdigest()
        wait_for(lambda: deliveries(app.state.settings)[0].delivered_at is not None)

    # A certificate for another name, on the same address: refused, nothing is delivered.
    for wrong_name in running(https_receiver(company_ca, "crm.example.com")):
        registered_secret(admin, wrong_name.url)
        webhook_id = webhook_ids(app.state.settings)[-1]

        def refused() -> list:
            rows = deliveries(app.state.settings)
            return [row for row in rows if row.webhook_id == webhook_id and row.last_error]

        open_conversation(people.customer("Max Muster"), "Paket fehlt")
        wait_for(refused)
        [delivery] = refused()
        assert delivery.delivered_at is None
        assert "certificate" in delivery.last_error.lower(), delivery.last_error
        assert not wrong_name.requests


@pytest.mark.parametrize("settings_overrides", [LOOPBACK_BOTH])
def test_an_https_receiver_with_a_certificate_from_an_unknown_ca_is_refused(
    people, tmp_path, monkeypatch, app, client
):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-file.pem"))
    admin = people.staff()
    for receiver in running(https_receiver(trustme.CA(), "localhost")):
        registered_secret(admin, receiver.url)
        open_conversation(people.customer(), "Rechnung fehlt")
        wait_for(
            lambda: deliveries(app.state.settings) and deliveries(app.state.settings)[0].last_error
        )
        [delivery] = deliveries(app.state.settings)
        assert delivery.delivered_at is None and "certificate" in delivery.last_error.lower()
        assert not receiver.requests


def register(admin, url: str):
    return admin.submit("/staff/webhooks", {"url": url}, form_page="/staff/webhooks")


def registered_secret(admin, url: str) -> str:
    response = register(admin, url)
    assert response.status_code == 201, response.text
    return SECRET_PATTERN.search(response.text)[1]


def deliveries(settings: Settings) -> list:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(webhook_deliveries).order_by(webhook_deliveries.c.id)
        ).all()
    engine.dispose()
    return rows


def webhook_ids(settings: Settings) -> list[int]:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        ids = connection.execute(sa.select(webhooks_table.c.id).order_by(webhooks_table.c.id))
        found = [row.id for row in ids]
    engine.dispose()
    return found


def send_due(app, client, now=None) -> int:
    return client.portal.call(webhook_sender.run_once, app.state.db, app.state.settings, now)


def test_a_new_request_reaches_the_receiver_signed_and_without_its_text(
    people, receiver, app, client
):
    admin = people.staff()
    secret = registered_secret(admin, receiver.url)
    customer = people.customer()
    number = open_conversation(customer, "Meine Bestellung 4711 kam beschädigt an")
    wait_for(lambda: receiver.requests)  # the POST woke the background task
    request = receiver.requests[0]
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/crm?source=board"
    assert headers["Content-Type"] == "application/json"
    timestamp = headers["X-Supportboard-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Supportboard-Signature"] == "sha256=" + expected.hexdigest()
    # A signature over the body alone, or with another secret, would not match.
    wrong = hmac.new(b"x" * 64, timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Supportboard-Signature"] != "sha256=" + wrong.hexdigest()
    payload = json.loads(body)
    assert payload["event"] == "conversation.created" == headers["X-Supportboard-Event"]
    assert payload["conversation"]["number"] == number
    assert payload["conversation"]["status"] == "open"
    assert payload["conversation"]["customer_id"] == customer.user_id
    assert payload["occurred_at"].endswith("Z")
    # Ids, number, status and times only: the text and the customer's name and address stay.
    assert b"4711" not in body and b"Bestellung" not in body
    assert customer.email.encode() not in body and b"Erika" not in body
    wait_for(lambda: deliveries(app.state.settings)[0].delivered_at is not None)
    log = admin.get("/staff/webhooks").text
    assert "conversation.created" in log and "zugestellt" in log  # "delivered"


def test_answers_solving_and_reassigning_are_told_in_order(people, receiver, app, client):
    admin = people.staff()
    colleague = people.staff(admin=False)
    registered_secret(admin, receiver.url)
    number = open_conversation(people.customer(), "Wo bleibt mein Paket?")
    page = f"/staff/t/{number}"
    admin.submit(f"{page}/reply", {"body": "Ist unterwegs."}, form_page=page)
    admin.submit(f"{page}/reply", {"body": "Notiz", "internal": "1"}, form_page=page)
    # Round-robin gave it to the colleague (the setup admin comes last): the admin takes it.
    admin.submit(f"{page}/update", {"assignee": str(admin.user_id)}, form_page=page)
    admin.submit(f"{page}/update", {"status": "solved"}, form_page=page)
    while send_due(app, client):
        pass
    wait_for(lambda: len(receiver.requests) >= 4)
    time.sleep(0.2)  # nothing more comes: the internal note is no event
    assert sorted(receiver.events()) == sorted(
        [
            "conversation.created",
            "conversation.answered",
            "conversation.reassigned",
            "conversation.solved",
        ]
    )
    by_event = {json.loads(r["body"])["event"]: json.loads(r["body"]) for r in receiver.requests}
    assert by_event["conversation.answered"]["conversation"]["status"] == "pending"
    assert by_event["conversation.created"]["conversation"]["assignee_id"] == colleague.user_id
    assert by_event["conversation.reassigned"]["conversation"]["assignee_id"] == admin.user_id
    assert by_event["conversation.solved"]["conversation"]["status"] == "solved"


def test_a_receiver_that_is_down_gets_retries_with_backoff_then_the_log_says_failed(
    people, app, client
):
    admin = people.staff()
    nobody_listens = f"http://127.0.0.1:{free_port()}/hook"
    registered_secret(admin, nobody_listens)
    open_conversation(people.customer(), "Rechnung fehlt")
    wait_for(lambda: deliveries(app.state.settings)[0].attempts == 1)
    first = deliveries(app.state.settings)[0]
    assert first.delivered_at is None and first.failed_at is None
    assert "Connect" in first.last_error or "refused" in first.last_error
    pauses = []
    for _ in range(webhooks.MAX_ATTEMPTS - 1):
        before = deliveries(app.state.settings)[0]
        now = before.next_attempt_at
        assert send_due(app, client, now) == 0
        after = deliveries(app.state.settings)[0]
        assert after.attempts == before.attempts + 1
        if after.failed_at is None:
            pauses.append(after.next_attempt_at - now)
    assert pauses == [timedelta(hours=2**n) for n in range(1, webhooks.MAX_ATTEMPTS - 1)]
    failed = deliveries(app.state.settings)[0]
    assert failed.failed_at is not None and failed.attempts == webhooks.MAX_ATTEMPTS
    # Given up: no later round tries again.
    assert send_due(app, client, utcnow() + timedelta(days=365)) == 0
    assert deliveries(app.state.settings)[0].attempts == webhooks.MAX_ATTEMPTS
    log = admin.get("/staff/webhooks").text
    row = re.search(r'<tr id="delivery-\d+">.*?</tr>', log, re.S)[0]
    assert "fehlgeschlagen" in row  # "failed"
    assert f">{webhooks.MAX_ATTEMPTS}<" in row
    assert "Connect" in row or "refused" in row


def test_a_receiver_error_is_retried_until_it_answers(people, receiver, app, client):
    admin = people.staff()
    registered_secret(admin, receiver.url)
    receiver.status = 503
    open_conversation(people.customer(), "Frage")
    wait_for(lambda: deliveries(app.state.settings)[0].attempts == 1)
    row = deliveries(app.state.settings)[0]
    assert (row.last_status, row.last_error) == (503, "HTTP 503")
    receiver.status = 204
    assert send_due(app, client, row.next_attempt_at) == 1
    row = deliveries(app.state.settings)[0]
    assert row.delivered_at is not None and row.attempts == 2 and row.last_status == 204
    # The same signed body both times: the receiver can drop the duplicate by its delivery id.
    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert (
        first["headers"]["X-Supportboard-Delivery"] == second["headers"]["X-Supportboard-Delivery"]
    )


def test_a_redirect_is_not_followed(people, receiver, app, client):
    admin = people.staff()
    registered_secret(admin, receiver.url)
    receiver.status = 302
    open_conversation(people.customer(), "Frage")
    wait_for(lambda: deliveries(app.state.settings)[0].attempts == 1)
    row = deliveries(app.state.settings)[0]
    assert row.delivered_at is None and row.last_error == "HTTP 302"
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "kein Link",
        "javascript:alert(1)",
        "http://",
        "http://crm:passwort@127.0.0.1/hook",
        "http://127.0.0.1:notaport/hook",
        "http://10.1.2.3/hook",  # private networks stay closed unless allowed
        "http://192.168.178.1/hook",
        "http://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "https://nonexistent.invalid/hook",
        "https://example.com/" + "a" * 600,
    ],
)
def test_bad_or_private_urls_are_refused_with_the_input_kept(people, settings, url):
    admin = people.staff()
    response = register(admin, url)
    assert response.status_code == 400
    assert 'class="field-error"' in response.text
    assert "Bitte" in response.text or "privaten" in response.text or "darf" in response.text
    if len(url) < 500:
        assert f'value="{url}"'.replace("&", "&amp;") in response.text or url.startswith("java")
    engine = sync_engine(settings)
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(webhooks_table))
        assert count.scalar_one() == 0
    engine.dispose()


def test_only_admins_manage_webhooks_and_every_post_needs_its_token(people, receiver, client):
    admin = people.staff()
    secret = registered_secret(admin, receiver.url)
    hook_id = int(re.search(r'id="webhook-(\d+)"', admin.get("/staff/webhooks").text)[1])
    colleague = people.staff(admin=False)
    customer = people.customer()
    for visitor in (colleague, customer):
        assert visitor.get("/staff/webhooks").status_code == 403
        token = csrf_from(visitor.get("/").text)
        for path in ("/staff/webhooks", f"/staff/webhooks/{hook_id}/secret"):
            refused = visitor.client.post(path, data={"csrf_token": token, "url": receiver.url})
            assert refused.status_code == 403
            assert secret not in refused.text
    assert client.get("/staff/webhooks").status_code == 303  # to the login
    # The admin without the form's token: refused, nothing created, removed or shown.
    for path in ("/staff/webhooks", f"/staff/webhooks/{hook_id}/secret"):
        refused = admin.client.post(path, data={"url": receiver.url + "x"})
        assert refused.status_code == 403 and secret not in refused.text
    assert admin.client.post(f"/staff/webhooks/{hook_id}/remove", data={}).status_code == 403
    assert admin.get(f"/staff/webhooks/{hook_id}/secret").status_code == 405  # GET shows nothing
    page = admin.get("/staff/webhooks").text
    assert page.count('id="webhook-') == 1 and secret not in page  # shown once, then hidden
    shown = admin.submit(f"/staff/webhooks/{hook_id}/secret", {}, form_page="/staff/webhooks")
    assert shown.status_code == 200 and secret in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert admin.submit("/staff/webhooks/999/secret", {}).status_code == 404


def test_the_secret_is_stored_encrypted(people, settings, receiver):
    admin = people.staff()
    secret = registered_secret(admin, receiver.url)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(webhooks_table.c.secret)).scalar_one()
    engine.dispose()
    assert secret not in stored
    assert webhooks.unseal(settings, stored) == secret


def test_a_removed_webhook_hears_nothing_more_and_its_queue_fails(people, receiver, app, client):
    admin = people.staff()
    registered_secret(admin, receiver.url)
    hook_id = int(re.search(r'id="webhook-(\d+)"', admin.get("/staff/webhooks").text)[1])
    receiver.status = 500
    customer = people.customer()
    open_conversation(customer, "Erste Frage")
    wait_for(lambda: deliveries(app.state.settings)[0].attempts == 1)
    removed = admin.submit(f"/staff/webhooks/{hook_id}/remove", {}, form_page="/staff/webhooks")
    assert removed.status_code == 303
    row = deliveries(app.state.settings)[0]
    assert row.failed_at is not None and row.last_error == "webhook removed"
    open_conversation(customer, "Zweite Frage")
    assert len(deliveries(app.state.settings)) == 1  # nothing queued for it any more
    assert 'id="webhook-' not in admin.get("/staff/webhooks").text
    again = admin.submit(f"/staff/webhooks/{hook_id}/remove", {}, form_page="/staff/webhooks")
    assert again.status_code == 404


def test_two_rounds_at_once_send_each_delivery_once(people, receiver, app, client):
    admin = people.staff()
    registered_secret(admin, receiver.url)
    receiver.status = 500
    customer = people.customer()
    for text in ("Eins", "Zwei", "Drei"):
        open_conversation(customer, text)
    wait_for(lambda: all(row.attempts >= 1 for row in deliveries(app.state.settings)))
    receiver.requests.clear()
    receiver.status = 200
    later = utcnow() + timedelta(days=1)

    async def two_rounds():
        import asyncio

        database, settings = app.state.db, app.state.settings
        return await asyncio.gather(
            webhook_sender.run_once(database, settings, later),
            webhook_sender.run_once(database, settings, later),
        )

    assert sum(client.portal.call(two_rounds)) == 3
    assert len(receiver.requests) == 3


def test_webhook_addresses_are_public_unless_a_network_is_allowed(tmp_path):
    closed = Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="k")
    opened = Settings(
        data_dir=tmp_path,
        database_url="sqlite://",
        secret_key="k",
        webhook_allow_networks=("10.0.0.0/8",),
    )
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.5", "169.254.169.254", "::1", "fd00::1"):
        assert not webhooks.address_allowed(closed, address), address
    assert webhooks.address_allowed(closed, "93.184.215.14")
    assert webhooks.address_allowed(closed, "2606:4700::1111")
    assert webhooks.address_allowed(opened, "10.1.2.3")
    assert webhooks.address_allowed(opened, "::ffff:10.1.2.3")
    assert not webhooks.address_allowed(opened, "192.168.0.5")


def test_the_allowed_networks_setting_is_checked_at_start(tmp_path):
    env = {"BOARD_DATA_DIR": str(tmp_path), "BOARD_SECRET_KEY": "k"}
    allowed = Settings.from_env({**env, "BOARD_WEBHOOK_ALLOW_NETWORKS": "10.0.0.0/8, ::1"})
    assert allowed.webhook_allow_networks == ("10.0.0.0/8", "::1/128")
    with pytest.raises(ValueError, match="BOARD_WEBHOOK_ALLOW_NETWORKS"):
        Settings.from_env({**env, "BOARD_WEBHOOK_ALLOW_NETWORKS": "intern"})
