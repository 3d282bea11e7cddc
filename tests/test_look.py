"""What the pages read like: rows that read as sentences, icons that need no emoji font,
house rules that fit the reader."""

from __future__ import annotations

import re
from pathlib import Path

import regex

from tests.conftest import csrf_from
from tests.test_inbox import PDF, open_conversation

ROOT = Path(__file__).resolve().parent.parent
# Pictographs that render as an empty box on a machine without an emoji font.
EMOJI = regex.compile(r"[\p{Extended_Pictographic}--[©®™↔↕]]", regex.V1)


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


def test_an_attachment_shows_an_svg_paperclip_hidden_from_screen_readers(people):
    erika, staff = people.customer(), people.staff()
    files = [("beleg.pdf", PDF, "application/pdf")]
    number = open_conversation(erika, "Die Rechnung anbei.", files)
    for person, path in ((erika, f"/inbox/{number}"), (staff, f"/staff/t/{number}")):
        page = person.get(path).text
        link = page.split('class="attachments"', 1)[1].split("</a>", 1)[0]
        assert '<svg class="icon icon-paperclip" aria-hidden="true"' in link
        assert link.rstrip().endswith("beleg.pdf")  # the link's name is the file's


def test_no_emoji_serves_as_an_icon():
    """Pages, styles and scripts draw icons as SVG (macros/icons.html), never as emoji.
    Mail is left out: it goes to mail clients, which have the fonts."""
    files = [*ROOT.glob("templates/**/*.html"), *ROOT.glob("static/**/*.*")]
    found = {
        f"{path.relative_to(ROOT)}: {match.group()}"
        for path in files
        if "mail" not in path.parts
        for match in EMOJI.finditer(path.read_text(encoding="utf-8"))
    }
    assert not found


def house_rules(html: str) -> str:
    return html.split('class="house-rules"', 1)[1].split("</details>", 1)[0]


def test_the_house_rules_fit_guests_and_customers(client, people):
    """Guests have no overview or inbox: their request gets a page of its own."""
    guest = house_rules(client.get("/contact").text)
    assert "Die ersten 100 Zeichen werden zum Betreff Ihrer Anfrage." in guest
    assert "eigene Seite" in guest
    for word in ("Übersicht", "Postfach", "erscheint hier"):
        assert word not in guest
    customer = house_rules(people.customer().get("/inbox/new").text)
    assert "den Sie in Ihrem Postfach sehen" in customer
    assert "Unsere Antwort erscheint hier" in customer
    assert "Übersicht" not in customer and "eigene Seite" not in customer


def test_a_customer_has_the_same_avatar_in_the_queue_and_in_the_conversation(people):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Wo bleibt mein Paket?")
    avatar = (
        f'<span class="avatar avatar-c{erika.user_id % 8} avatar-small"'
        ' aria-hidden="true">EM</span>'
    )
    queue_row = staff.get("/staff").text.split(f"#{number}</a>", 1)[1].split("</tr>", 1)[0]
    assert avatar in queue_row
    assert avatar in staff.get(f"/staff/t/{number}").text
    assert avatar in erika.get(f"/inbox/{number}").text
