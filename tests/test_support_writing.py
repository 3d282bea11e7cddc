""" "Support is writing …" over a real uvicorn, and the mail link's live stream: what the
customer's, the guest's and the mail link's pages hear through /events while staff type."""

from __future__ import annotations

import json
import re
import time

import pytest
import sqlalchemy as sa

from board import live
from board.db import live_events, mail_links, sync_engine
from board.mail_links import token_for
from tests.conftest import csrf_from, submit
from tests.test_events import (
    Listening,
    answer,
    colleague_logged_in,
    customer,
    staff,
    visitor,
    write,
)

# Runs on PostgreSQL too: the signs travel between processes through the live_events table.
pytestmark = pytest.mark.postgresql


@pytest.fixture
def cast(live_server):
    """The server's address, Erika, Max and the admin, each in their own client; every
    client (and every stream this test opens) closed after it."""
    opened: list = []
    people = (
        customer(live_server, "Erika Mustermann", "erika@example.com"),
        customer(live_server, "Max Muster", "max@example.com"),
        staff(live_server),
    )
    yield live_server, *people, opened
    for client in (*people, *opened):
        client.close()


def stream(opened: list, client, **options) -> Listening:
    """A stream this test opens; closed with the cast."""
    opened.append(client)
    listening = Listening(client, **options).start()
    opened.append(listening)
    return listening


def type_in(person, number: int, internal: bool = False, with_token: bool = True) -> int:
    """One throttled sign from the staff's compose box (static/js/live.js)."""
    data = {"internal": "1" if internal else "0"}
    if with_token:
        data["csrf_token"] = csrf_from(person.get(f"/staff/t/{number}").text)
    return person.post(f"/staff/t/{number}/typing", data=data).status_code


def answering_rows(settings) -> list:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(live_events).where(live_events.c.kind == "answering")
        ).all()
    engine.dispose()
    return found


def newest_link_id(settings) -> int:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        found = connection.execute(sa.select(sa.func.max(mail_links.c.id))).scalar_one()
    engine.dispose()
    return found


def test_the_customer_sees_support_writing_but_never_for_an_internal_note(
    cast, settings, monkeypatch
):
    base, erika, _max, team, opened = cast
    colleague, _julia = colleague_logged_in(base, settings)
    number = write(erika, "Kommt meine Bestellung vor Weihnachten?")
    customer_page = stream(opened, erika)
    colleagues_page = stream(opened, colleague)

    assert type_in(team, number, internal=True) == 204
    assert colleagues_page.next("typing", conversation=number)  # colleagues see who
    assert [e for e in customer_page.kinds_within(1.5) if e.kind == "answering"] == []

    monkeypatch.setattr(live, "TYPING_EVERY", 0.0)  # the next sign at once, not in 4 s
    assert type_in(team, number) == 204
    heard = customer_page.next("answering", conversation=number)
    assert heard.data == {"conversation": number}  # no staff name for the customer
    # Without a CSRF token, or from a customer: refused, nothing recorded.
    assert type_in(team, number, with_token=False) == 403
    page = erika.get("/inbox").text
    refused = erika.post(f"/staff/t/{number}/typing", data={"csrf_token": csrf_from(page)})
    assert refused.status_code == 403
    assert len(answering_rows(settings)) == 1


def test_typing_writes_one_sign_per_few_seconds_not_one_per_keystroke(cast, settings):
    _base, erika, _max, team, _opened = cast
    number = write(erika, "Eine Frage zur Garantie.")
    for _keystroke in range(6):
        assert type_in(team, number) == 204
    assert len(answering_rows(settings)) == 1


def test_an_old_sign_is_not_replayed_after_a_reconnect(cast, settings):
    _base, erika, _max, team, opened = cast
    number = write(erika, "Noch eine Frage zur Lieferung.")
    assert type_in(team, number) == 204
    [row] = answering_rows(settings)
    engine = sync_engine(settings)
    with engine.begin() as connection:  # a minute ago
        connection.execute(
            live_events.update()
            .where(live_events.c.id == row.id)
            .values(data=json.dumps({"at": time.time() - 60}))
        )
    engine.dispose()
    again = stream(opened, erika, headers={"Last-Event-ID": str(row.id - 1)})
    assert [e for e in again.kinds_within(1.5) if e.kind == "answering"] == []


def test_the_guest_page_hears_support_writing(cast):
    base, _erika, _max, team, opened = cast
    guest = visitor(base)
    opened.append(guest)
    contacted = submit(
        guest,
        "/contact",
        {"name": "Gerd Gast", "email": "gerd@example.com", "body": "Ich habe kein Konto."},
        form_page="/contact",
    )
    token = contacted.headers["location"].rsplit("/", 1)[1]
    number = int(re.search(r"#(\d+)", guest.get(f"/g/{token}").text)[1])
    guest_page = stream(opened, visitor(base), path=f"/events?guest={token}")
    assert type_in(team, number) == 204
    assert guest_page.next("answering", conversation=number)


def test_the_mail_link_page_hears_its_conversation_and_nothing_else(cast, settings, monkeypatch):
    base, erika, _max, team, opened = cast
    other = write(erika, "Eine ganz andere Anfrage zur Rechnung.")
    number = write(erika, "Wo bleibt die Kaffeemühle?")
    answer(team, number, "Sie ist unterwegs.")
    token = token_for(settings.secret_key, newest_link_id(settings))
    phone = visitor(base)
    opened.append(phone)
    assert phone.get(f"/m/{token}").status_code == 200
    link_page = stream(opened, phone, path=f"/events?link={token}")
    assert link_page.status == 200

    monkeypatch.setattr(live, "TYPING_EVERY", 0.0)
    assert type_in(team, number) == 204
    assert link_page.next("answering", conversation=number)
    assert type_in(team, other) == 204
    elsewhere = answer(team, other, "Die Rechnung kommt neu.")
    here = answer(team, number, "Morgen ist sie da.")
    assert link_page.next("message", conversation=number).data["id"] == here
    heard = link_page.kinds_within(1.5)
    assert all(e.data.get("conversation") in (number, None) for e in heard)
    assert all(e.kind not in ("unread", "counts", "notification") for e in heard)
    assert elsewhere not in [e.data.get("id") for e in heard]


def test_a_mail_link_stream_needs_a_working_link_and_ends_with_it(cast, settings, monkeypatch):
    monkeypatch.setattr(live, "IDLE_CHECK_SECONDS", 0.5)
    base, erika, _max, team, opened = cast
    number = write(erika, "Meine Lieferadresse hat sich geändert.")
    answer(team, number, "Danke, wir ändern sie.")
    token = token_for(settings.secret_key, newest_link_id(settings))
    made_up = stream(opened, visitor(base), path="/events?link=1.erfunden")
    assert made_up.status == 401
    link_page = stream(opened, visitor(base), path=f"/events?link={token}")
    assert link_page.status == 200
    revoked = submit(
        team, f"/staff/t/{number}/mail-links/revoke", {}, form_page=f"/staff/t/{number}"
    )
    assert revoked.status_code == 303
    assert link_page.ended.wait(5), "the stream outlived its revoked link"
    after = stream(opened, visitor(base), path=f"/events?link={token}")
    assert after.status == 401
