"""BOARD_NOTIFY_CC: the team mailbox gets a copy of every new-request notice, through a
real SMTP server on loopback; a wrong address stops the start."""

from __future__ import annotations

import pytest

from board.config import Settings
from tests.conftest import csrf_from, mail_text, wait_for
from tests.test_inbox import open_conversation

TEAM = "team@shop.example"


@pytest.fixture
def settings_overrides(smtp_port):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "notify_cc": TEAM}


def to(smtp, address: str) -> list:
    return [m for m in smtp.messages if m["To"].addresses[0].addr_spec == address]


def test_the_team_mailbox_hears_of_each_new_request_without_its_text(people, smtp, client):
    number = open_conversation(people.customer(), "Bestellung 4711: falsche Größe geliefert")
    [notice] = wait_for(lambda: to(smtp, TEAM))
    assert notice["Subject"] == f"Neue Anfrage #{number}"
    text = mail_text(notice)
    assert f"/staff/t/{number}" in text
    assert "4711" not in text and "Größe" not in text  # a doorbell, as for staff
    assert "Team-Postfach" in text  # says why it came, not "you chose this on your account"
    contact = client.get("/contact").text
    guest = client.post(
        "/contact",
        data={
            "csrf_token": csrf_from(contact),
            "name": "Gast",
            "email": "gast@example.com",
            "body": "Frage als Gast",
        },
    )
    assert guest.status_code == 303
    wait_for(lambda: len(to(smtp, TEAM)) == 2)
    # Answers are no new requests: the team mailbox stays quiet.
    staff = people.staff()
    page = f"/staff/t/{number}"
    assert (
        staff.submit(f"{page}/reply", {"body": "Wir tauschen."}, form_page=page).status_code == 303
    )
    wait_for(lambda: any("Neue Antwort" in m["Subject"] for m in smtp.messages))
    assert len(to(smtp, TEAM)) == 2


def test_a_refused_request_sends_no_copy(people, smtp, client):
    customer = people.customer()
    page = customer.get("/inbox/new").text
    refused = customer.client.post("/inbox/new", data={"csrf_token": csrf_from(page), "body": ""})
    assert refused.status_code == 400
    missing_token = customer.client.post("/inbox/new", data={"body": "Ohne Token"})
    assert missing_token.status_code == 403
    open_conversation(customer, "Jetzt richtig")
    wait_for(lambda: to(smtp, TEAM))
    assert len(to(smtp, TEAM)) == 1


@pytest.mark.parametrize(
    "value", ["team", "team@", "a@b", "Team <team@shop.example>", "a@b.c, d@e.f"]
)
def test_a_wrong_address_stops_the_start(tmp_path, value):
    env = {"BOARD_DATA_DIR": str(tmp_path), "BOARD_SECRET_KEY": "k", "BOARD_NOTIFY_CC": value}
    with pytest.raises(ValueError, match="BOARD_NOTIFY_CC"):
        Settings.from_env(env)


def test_the_address_is_read_and_unset_means_no_copy(tmp_path):
    env = {"BOARD_DATA_DIR": str(tmp_path), "BOARD_SECRET_KEY": "k"}
    assert Settings.from_env(env).notify_cc is None
    read = Settings.from_env({**env, "BOARD_NOTIFY_CC": " Team@Shop.example "})
    assert read.notify_cc == "team@shop.example"
