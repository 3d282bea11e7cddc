"""What the pages read like: rows that read as sentences, icons that need no emoji font,
house rules that fit the reader."""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.test_inbox import PDF


def send_invoice(staff, customer_email: str) -> None:
    page = staff.get("/staff/invoice").text
    response = staff.client.post(
        "/staff/invoice",
        data={"csrf_token": csrf_from(page), "customer": customer_email, "body": "Rechnung R-17"},
        files=[("attachments", ("rechnung.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 303, response.text


def row_text(html: str) -> str:
    row = html.split('class="conversation-row', 1)[1].split("</li>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row)).strip()


def test_an_invoice_row_names_one_invoice_after_a_space(people):
    """ "… handled by Selin Aydin· RECHNUNGEN" read wrongly: no space, and a plural."""
    erika, staff = people.customer(), people.staff()
    send_invoice(staff, erika.email)
    text = row_text(erika.get("/inbox").text)
    assert re.search(r"\S · Rechnung$", text), text
    assert "Rechnungen" not in text
    erika.client.cookies.set("lang", "en")
    english = row_text(erika.get("/inbox", headers={"accept-language": "en"}).text)
    assert english.endswith(" · Invoice"), english
    assert "handled by" in english  # the sender: the row as the one above, with a name
