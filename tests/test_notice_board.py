"""The notice board through HTTP: the admin's instructions for staff on the staff home and
above the queue, the public banner on the forum and the contact page, cached guest pages
that show a changed banner at once, and who may change either."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from board.db import notices
from tests.conftest import Person, csrf_from
from tests.test_inbox import rows

INSTRUCTIONS = (
    "**Lieferverzug** bei Artikel X — Textbaustein `#verzug` nutzen <script>alert(1)</script>"
)


def write_notices(admin: Person, staff_notice: str = "", banner: str = ""):
    return admin.submit(
        "/staff/notices",
        {"staff_notice": staff_notice, "banner": banner},
        form_page="/staff/notices",
    )


def banner_on(page: str) -> str | None:
    if 'id="site-banner"' not in page:
        return None
    return page.split('id="site-banner"><p class="wrap">')[1].split("</p>")[0]


def board_on(page: str) -> str:
    if 'id="notice-board"' not in page:
        return ""
    return page.split('id="notice-board"')[1].split("</section>")[0]


def test_the_admins_instructions_show_on_the_staff_home_and_above_the_queue(admin, sven):
    assert write_notices(admin, INSTRUCTIONS).status_code == 303
    for path in ("/staff/home", "/staff"):
        board = board_on(sven.get(path).text)
        assert "<strong>Lieferverzug</strong>" in board and "<code>#verzug</code>" in board
        # Markdown without raw HTML: the tag is text, never markup.
        assert "<script>" not in board and "&lt;script&gt;alert(1)&lt;/script&gt;" in board
    queue = sven.get("/staff").text
    assert queue.index('id="notice-board"') < queue.index('id="queue-tabs"')
    # Staff read it; only the admin gets the link to change it.
    assert "/staff/notices" not in board_on(sven.get("/staff/home").text)
    assert "/staff/notices" in board_on(admin.get("/staff/home").text)
    # Emptied, nothing is shown.
    write_notices(admin, "")
    assert board_on(sven.get("/staff/home").text) == ""


def test_the_form_shows_what_is_there(admin):
    write_notices(admin, "Heute Inventur", "Telefon heute nicht erreichbar")
    page = admin.get("/staff/notices").text
    assert ">Heute Inventur</textarea>" in page
    assert 'value="Telefon heute nicht erreichbar"' in page


def test_only_admins_change_the_notice_board(admin, sven, people, client, settings):
    customer = people.customer()
    assert client.get("/staff/notices").status_code == 303  # to the login
    assert customer.get("/staff/notices").status_code == 403
    assert sven.get("/staff/notices").status_code == 403
    for person in (customer, sven):
        token = csrf_from(person.get("/").text)
        refused = person.client.post(
            "/staff/notices", data={"csrf_token": token, "staff_notice": "X", "banner": "Y"}
        )
        assert refused.status_code == 403
    anonymous = client.post("/staff/notices", data={"staff_notice": "X", "banner": "Y"})
    assert anonymous.status_code in (401, 403)
    no_token = admin.client.post("/staff/notices", data={"staff_notice": "X", "banner": "Y"})
    assert no_token.status_code == 403
    stored = rows(settings, sa.select(notices.c.name, notices.c.body).order_by(notices.c.name))
    assert stored == [("banner", ""), ("staff", "")]


@pytest.mark.parametrize(
    ("banner", "message"),
    [
        ("x" * 201, "The banner may have at most 200 characters."),
        ("Zeile eins\nZeile zwei", "The banner is one line."),
    ],
)
def test_bad_input_is_refused_with_the_rest_kept(admin, settings, banner, message):
    response = admin.client.post(
        "/staff/notices",
        data={
            "csrf_token": csrf_from(admin.get("/staff/notices").text),
            "staff_notice": "Bitte #verzug nutzen",
            "banner": banner,
        },
    )
    assert response.status_code == 400
    assert message in response.text
    assert ">Bitte #verzug nutzen</textarea>" in response.text
    assert rows(settings, sa.select(notices.c.body).where(notices.c.name == "staff")) == [("",)]


def test_a_long_staff_notice_is_refused(admin):
    response = write_notices(admin, "x" * 5_001)
    assert response.status_code == 400
    assert "at most 5,000 characters" in response.text or "at most 5000 characters" in response.text


def test_the_banner_appears_and_disappears_at_once_on_cached_guest_pages(
    admin, people, client, new_client
):
    author = people.customer()
    created = author.submit(
        "/c/technik-und-fragen/new", {"title": "Versand", "body": "Wann kommt es?"}
    )
    topic = created.headers["location"]
    guest_pages = ["/", "/c/technik-und-fragen", topic]
    for path in guest_pages:  # twice: the second answer comes from the guest page cache
        assert banner_on(client.get(path).text) is None
        assert banner_on(client.get(path).text) is None
    assert banner_on(client.get("/contact").text) is None

    write_notices(admin, banner="Telefon heute nicht erreichbar")
    other_guest = new_client()
    for visitor in (client, other_guest, author.client):
        for path in [*guest_pages, "/contact"] if visitor is not author.client else guest_pages:
            assert banner_on(visitor.get(path).text) == "Telefon heute nicht erreichbar", path
    # Staff pages are not where visitors look.
    assert banner_on(admin.get("/staff/home").text) is None

    write_notices(admin, banner="")
    for path in [*guest_pages, "/contact"]:
        assert banner_on(client.get(path).text) is None, path


def test_the_banner_is_text_not_markup(admin, client):
    write_notices(admin, banner='<a href="https://evil.example">Gewinn</a> **fett**')
    page = client.get("/").text
    assert banner_on(page) == (
        "&lt;a href=&#34;https://evil.example&#34;&gt;Gewinn&lt;/a&gt; **fett**"
    )
