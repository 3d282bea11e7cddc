"""The public forum through its HTTP routes: reading, writing, moderation, counters."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from board.db import categories, posts, statement_listener, sync_engine, topics, users
from board.setup import recount
from tests.conftest import count_statements, csrf_from, page_selects, submit

TECH = "technik-und-fragen"
SHIPPING = "bestellung-und-versand"


def open_topic(person, title="Paket nicht angekommen", body="Mein Paket ist **weg**.", slug=TECH):
    response = person.submit(f"/c/{slug}/new", {"title": title, "body": body})
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def reply(person, topic_id, body="Danke, hat geklappt!"):
    return person.submit(f"/t/{topic_id}/reply", {"body": body})


def moderate(person, topic_id, action, **extra):
    return person.submit(f"/t/{topic_id}/moderate", {"action": action, **extra})


def fetch(settings, query):
    engine = sync_engine(settings)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    engine.dispose()
    return rows


# --- reading -----------------------------------------------------------------------------


def test_index_lists_default_categories_with_counts_and_last_post(client):
    page = client.get("/").text
    for name in ("Ankündigungen", "Shop- und Kundenbereich", "Bestellung &amp; Versand"):
        assert name in page
    assert "Technik &amp; Fragen" in page
    assert "Willkommen im Support-Forum" in page  # the last post of "Ankündigungen"


def test_welcome_topic_is_pinned_and_rendered(client):
    page = client.get("/t/1").text
    assert "<strong>Bestellung, Versand und unsere Produkte</strong>" in page
    assert "Angepinnt" in page
    assert re.search(r"Beitrag von Administrator » <time[^>]*>\d\d\.\d\d\.\d{4}, \d\d:\d\d<", page)
    assert 'href="/c/ankuendigungen"' in page  # breadcrumb back to the category


def test_dates_follow_the_reader_language(client):
    page = client.get("/t/1", headers={"Accept-Language": "en"}).text
    assert re.search(r"Post by Administrator » <time[^>]*>[A-Z][a-z]{2} \d{1,2}, \d{4}, ", page)


@pytest.mark.parametrize("path", ["/t/999", "/c/gibt-es-nicht", "/p/999", "/u/999", "/nowhere"])
def test_unknown_ids_give_a_404_page_in_the_layout(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "Diese Seite gibt es nicht" in response.text
    assert 'class="site-header"' in response.text


def test_public_profile_shows_name_title_posts_and_since(client, people):
    staff = people.staff()
    page = client.get(f"/u/{staff.user_id}").text
    assert "Administrator" in page and "Inhaber" in page
    assert "Willkommen im Support-Forum" in page
    assert re.search(r"<dd>\d\d\.\d\d\.\d{4}</dd>", page)


def test_a_profile_exists_only_for_people_who_posted_publicly(client, people):
    """Ids count up: a profile for every account would list every customer's name."""
    erika = people.customer()
    max_ = people.customer("Max Muster")
    for visitor in (client, max_.client):
        assert visitor.get(f"/u/{erika.user_id}").status_code == 404
    topic_id = open_topic(erika)
    page = client.get(f"/u/{erika.user_id}")
    assert page.status_code == 200 and "Erika Mustermann" in page.text
    post_id = int(re.search(r'id="p(\d+)"', client.get(f"/t/{topic_id}").text)[1])
    staff = people.staff()
    assert staff.submit(f"/p/{post_id}/delete", {}).status_code == 303
    assert client.get(f"/u/{erika.user_id}").status_code == 404  # nothing public is left


# --- writing -----------------------------------------------------------------------------


def test_customer_opens_a_topic_with_markdown_and_replies(people, client, settings):
    erika = people.customer()
    body = (
        "Hallo,\n\n- Bestellung **4711**\n- Sendung `JJD000123`\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    topic_id = open_topic(erika, "Sendungsnummer fehlt", body)
    page = client.get(f"/t/{topic_id}").text
    assert "<strong>4711</strong>" in page and "<code>JJD000123</code>" in page
    assert "<table>" in page and "<li>" in page
    assert "Beitrag von Erika Mustermann" in page
    assert reply(erika, topic_id, "Hat sich erledigt.").status_code == 303
    assert "Hat sich erledigt." in client.get(f"/t/{topic_id}").text
    category_page = client.get(f"/c/{TECH}").text
    assert "Sendungsnummer fehlt" in category_page
    row = fetch(settings, sa.select(topics).where(topics.c.id == topic_id))[0]
    assert row.post_count == 2 and row.last_poster_id == erika.user_id


def test_empty_topic_is_refused_and_keeps_the_title(people):
    erika = people.customer()
    response = erika.submit(f"/c/{TECH}/new", {"title": "Nur ein Titel", "body": "   "})
    assert response.status_code == 400
    assert 'value="Nur ein Titel"' in response.text


def test_guest_cannot_post(client, settings):
    response = submit(client, f"/c/{TECH}/new", {"title": "Gast", "body": "Hallo"})
    assert response.status_code == 401
    assert response.headers.get("location") is None
    assert "Bitte melden Sie sich an" in response.text or "Anmelden" in response.text
    assert submit(client, "/t/1/reply", {"body": "Hallo"}).status_code == 401
    assert fetch(settings, sa.select(sa.func.count()).select_from(posts))[0][0] == 1


def test_only_staff_open_topics_in_announcements(people, settings):
    erika = people.customer()
    response = erika.submit("/c/ankuendigungen/new", {"title": "Werbung", "body": "Kauft!"})
    assert response.status_code == 403
    assert "nur unser Team" in response.text
    staff = people.staff()
    open_topic(staff, "Neue Versandzeiten", "Ab Montag versenden wir samstags.", "ankuendigungen")
    titles = [row.title for row in fetch(settings, sa.select(topics.c.title))]
    assert "Werbung" not in titles and "Neue Versandzeiten" in titles


def test_markdown_xss_payloads_are_rendered_inert(people, client):
    erika = people.customer()
    payloads = (
        "<script>alert('x')</script>\n\n"
        "<img src=x onerror=alert(1)>\n\n"
        "[klick](javascript:alert(1))\n\n"
        "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n"
        "[gut](https://example.com/hilfe)"
    )
    topic_id = open_topic(erika, "<script>alert('title')</script>", payloads)
    page = client.get(f"/t/{topic_id}").text
    assert "<script>alert" not in page
    assert "<img src=x onerror" not in page
    assert 'href="javascript:' not in page and 'href="data:' not in page
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page
    assert '<a href="https://example.com/hilfe" rel="nofollow ugc">gut</a>' in page


@pytest.mark.parametrize("settings_overrides", [{"flood_seconds": 30}])
def test_flood_control_keeps_the_text_and_exempts_staff(people):
    erika = people.customer()
    topic_id = open_topic(erika)
    response = reply(erika, topic_id, "Noch eine Frage zu meinem Paket")
    assert response.status_code == 429
    assert "Sie schreiben zu schnell" in response.text
    assert "Noch eine Frage zu meinem Paket" in response.text
    staff = people.staff()
    assert reply(staff, topic_id, "Erste Antwort").status_code == 303
    assert reply(staff, topic_id, "Zweite Antwort").status_code == 303


# --- moderation --------------------------------------------------------------------------


def test_locked_topic_refuses_replies_and_hides_the_reply_box(people, client, settings):
    erika, staff = people.customer(), people.staff()
    topic_id = open_topic(erika)
    assert moderate(staff, topic_id, "lock").status_code == 303
    page = erika.get(f"/t/{topic_id}").text
    assert "Gesperrt" in page
    assert 'id="reply-form"' not in page
    response = reply(erika, topic_id, "Aber ich wollte noch was sagen")
    assert response.status_code == 403
    assert "Dieses Thema ist gesperrt" in response.text
    assert "Aber ich wollte noch was sagen" in response.text
    assert fetch(settings, sa.select(topics.c.post_count).where(topics.c.id == topic_id))[0][0] == 1
    assert moderate(staff, topic_id, "unlock").status_code == 303
    assert reply(erika, topic_id).status_code == 303


def test_customer_cannot_moderate(people, settings):
    erika, max_ = people.customer(), people.customer("Max Muster")
    topic_id = open_topic(erika)
    for person in (erika, max_):
        response = moderate(person, topic_id, "lock")
        assert response.status_code == 403
    assert not fetch(settings, sa.select(topics.c.locked).where(topics.c.id == topic_id))[0][0]


def test_pinned_topics_stay_on_top(people, client):
    erika, staff = people.customer(), people.staff()
    old = open_topic(erika, "Alte Frage zum Versand")
    open_topic(erika, "Neuere Frage zum Versand")
    moderate(staff, old, "pin")
    page = client.get(f"/c/{TECH}").text
    assert page.index("Alte Frage zum Versand") < page.index("Neuere Frage zum Versand")
    moderate(staff, old, "unpin")
    page = client.get(f"/c/{TECH}").text
    assert page.index("Neuere Frage zum Versand") < page.index("Alte Frage zum Versand")


def test_staff_moves_a_topic_and_both_categories_recount(people, client, settings):
    erika, staff = people.customer(), people.staff()
    topic_id = open_topic(erika)
    reply(erika, topic_id)
    target = fetch(settings, sa.select(categories.c.id).where(categories.c.slug == SHIPPING))[0][0]
    assert moderate(staff, topic_id, "move", category=str(target)).status_code == 303
    counts = {
        row.slug: (row.topic_count, row.post_count)
        for row in fetch(settings, sa.select(categories))
    }
    assert counts[TECH] == (0, 0) and counts[SHIPPING] == (1, 2)
    assert "Paket nicht angekommen" in client.get(f"/c/{SHIPPING}").text
    bad = moderate(staff, topic_id, "move", category="9999")
    assert bad.status_code == 400


def test_author_edits_own_post_and_it_is_marked_edited(people, client):
    erika, max_ = people.customer(), people.customer("Max Muster")
    topic_id = open_topic(erika)
    post_id = int(re.search(r'id="p(\d+)"', client.get(f"/t/{topic_id}").text).group(1))
    assert max_.get(f"/p/{post_id}/edit").status_code == 403
    stolen = max_.submit(f"/p/{post_id}/edit", {"title": "Gehackt", "body": "Gehackt"})
    assert stolen.status_code == 403
    response = erika.submit(
        f"/p/{post_id}/edit", {"title": "Paket ist da", "body": "Schon **gefunden**."}
    )
    assert response.status_code == 303
    page = client.get(f"/t/{topic_id}").text
    assert "Paket ist da" in page and "Schon <strong>gefunden</strong>." in page
    assert "Bearbeitet am" in page
    staff = people.staff()
    assert staff.submit(f"/p/{post_id}/edit", {"title": "T", "body": "Vom Team"}).status_code == 303


def test_soft_deleted_post_is_hidden_from_customers_and_shown_to_staff(people, client, settings):
    erika, staff = people.customer(), people.staff()
    topic_id = open_topic(erika)
    reply(erika, topic_id, "Bitte diesen Beitrag entfernen")
    post_id = fetch(settings, sa.select(sa.func.max(posts.c.id)))[0][0]
    assert erika.submit(f"/p/{post_id}/delete", {}).status_code == 403
    assert staff.submit(f"/p/{post_id}/delete", {}).status_code == 303
    assert "Bitte diesen Beitrag entfernen" not in client.get(f"/t/{topic_id}").text
    staff_view = staff.get(f"/t/{topic_id}").text
    assert "Bitte diesen Beitrag entfernen" in staff_view and "Gelöscht" in staff_view
    assert client.get(f"/p/{post_id}").status_code == 404
    row = fetch(settings, sa.select(posts).where(posts.c.id == post_id))[0]
    assert row.deleted_at is not None and row.deleted_by == staff.user_id  # nothing is erased
    assert fetch(settings, sa.select(topics.c.post_count).where(topics.c.id == topic_id))[0][0] == 1


def test_deleting_the_first_post_removes_the_topic_for_customers(people, client):
    erika, staff = people.customer(), people.staff()
    topic_id = open_topic(erika, "Spam-Thema")
    first_post = int(re.search(r'id="p(\d+)"', client.get(f"/t/{topic_id}").text).group(1))
    assert staff.submit(f"/p/{first_post}/delete", {}).status_code == 303
    assert client.get(f"/t/{topic_id}").status_code == 404
    assert "Spam-Thema" not in client.get(f"/c/{TECH}").text
    assert staff.get(f"/t/{topic_id}").status_code == 200
    assert "Spam-Thema" in staff.get(f"/c/{TECH}").text


def test_staff_only_category_is_invisible_to_customers(people, client, settings):
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            categories.insert().values(slug="intern", name="Interne Absprachen", staff_only=True)
        )
    engine.dispose()
    staff, erika = people.staff(), people.customer()
    topic_id = open_topic(staff, "Urlaubsplanung", "Wer hat im August Dienst?", "intern")
    assert "Interne Absprachen" not in client.get("/").text
    assert "Interne Absprachen" in staff.get("/").text
    for visitor in (client, erika.client):
        assert visitor.get("/c/intern").status_code == 404
        assert visitor.get(f"/t/{topic_id}").status_code == 404
    assert erika.submit("/c/intern/new", {"title": "x", "body": "y"}).status_code == 404
    assert "Urlaubsplanung" not in client.get(f"/u/{staff.user_id}").text


# --- pages and queries -------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"posts_per_page": 5}])
def test_topic_pages_and_post_links_land_on_the_right_page(people, client, settings):
    staff = people.staff()
    topic_id = open_topic(staff)
    for number in range(11):
        reply(staff, topic_id, f"Antwort Nummer {number}")
    first_page = client.get(f"/t/{topic_id}").text
    assert "Antwort Nummer 3" in first_page and "Antwort Nummer 4" not in first_page
    assert f'href="/t/{topic_id}?page=3"' in first_page
    last_post = fetch(settings, sa.select(sa.func.max(posts.c.id)))[0][0]
    response = client.get(f"/p/{last_post}")
    assert response.headers["location"] == f"/t/{topic_id}?page=3#p{last_post}"
    assert "Antwort Nummer 10" in client.get(f"/t/{topic_id}?page=3").text
    assert client.get(f"/t/{topic_id}?page=99").status_code == 200  # clamps to the last page
    # Above and below the posts: two navigations, told apart by their names.
    labels = re.findall(r'<nav class="pagination" aria-label="([^"]+)"', first_page)
    assert len(labels) == 2 and len(set(labels)) == 2, labels


def test_a_topic_page_is_a_few_queries_whatever_the_number_of_authors(people, client, app):
    staff = people.staff()
    topic_id = open_topic(staff)
    for number in range(8):
        author = people.customer(f"Kunde{number} Test", f"kunde{number}@example.com")
        reply(author, topic_id, f"Beitrag {number}")
    statements: list[str] = []
    count_statements(app, client, statements)
    try:
        page = staff.get(f"/t/{topic_id}").text
    finally:
        statement_listener(app.state.db, None)
    assert all(f"Kunde{number} Test" in page for number in range(8))
    selects = page_selects(statements)
    # session + the header's notification bell + topic with category + posts with authors
    # + categories for the move menu (staff only) + post count for staff, who also see
    # deleted posts + the public banner (one primary-key read).
    assert len(selects) <= 7, selects
    statements.clear()
    count_statements(app, client, statements)
    try:
        client.get(f"/t/{topic_id}")
        first_visit = page_selects(statements)
        statements.clear()
        client.get(f"/t/{topic_id}")
        second_visit = page_selects(statements)
    finally:
        statement_listener(app.state.db, None)
    # cache version, topic, posts with authors, the public banner
    assert len(first_visit) == 4, first_visit
    assert len(second_visit) == 1, second_visit  # guests get the cached page


def test_guest_page_cache_serves_each_guest_their_own_token_and_follows_changes(
    people, client, new_client
):
    staff = people.staff()
    topic_id = open_topic(staff, "Versandkosten", "Ab 50 Euro versandkostenfrei.")
    first, second = client, new_client()
    first_page, second_page = first.get(f"/t/{topic_id}").text, second.get(f"/t/{topic_id}").text
    assert "Ab 50 Euro" in first_page and "Ab 50 Euro" in second_page
    assert csrf_from(first_page) != csrf_from(second_page)
    assert "csrf-token-placeholder" not in second_page  # the cache's, not an input's
    # The token from the cached page works for that guest's own form.
    response = second.post(
        "/language",
        data={"csrf_token": csrf_from(second_page), "locale": "de", "next": "/"},
    )
    assert response.status_code == 303
    reply(staff, topic_id, "Neu: ab 40 Euro.")
    assert "ab 40 Euro" in first.get(f"/t/{topic_id}").text
    moderate(staff, topic_id, "lock")
    assert "Gesperrt" in second.get(f"/t/{topic_id}").text
    assert "Gesperrt" in second.get(f"/c/{TECH}").text
    staff.submit(
        "/account",
        {"action": "profile", "name": "Ralf Berger", "email": staff.email},
        form_page="/account",
    )
    assert "Beitrag von Ralf Berger" in first.get(f"/t/{topic_id}").text


def test_incremental_counters_match_a_full_recount(people, settings):
    erika, max_, staff = people.customer(), people.customer("Max Muster"), people.staff()
    first = open_topic(erika)
    second = open_topic(max_, "Zweites Thema", "Text", SHIPPING)
    for person in (erika, max_, staff):
        reply(person, first)
    reply(erika, second)
    last = fetch(settings, sa.select(sa.func.max(posts.c.id)))[0][0]
    staff.submit(f"/p/{last}/delete", {})
    moderate(
        staff,
        second,
        "move",
        category=str(
            fetch(settings, sa.select(categories.c.id).where(categories.c.slug == TECH))[0][0]
        ),
    )

    def snapshot():
        return (
            fetch(settings, sa.select(categories).order_by(categories.c.id)),
            fetch(settings, sa.select(topics).order_by(topics.c.id)),
            fetch(settings, sa.select(users.c.id, users.c.post_count).order_by(users.c.id)),
        )

    before = snapshot()
    engine = sync_engine(settings)
    with engine.begin() as connection:
        recount(connection)
    engine.dispose()
    assert snapshot() == before


def test_a_page_past_the_end_of_a_category_shows_its_last_page(people, client):
    staff = people.staff()
    open_topic(staff, "Einziges Thema")
    page = client.get(f"/c/{TECH}?page=999")
    assert page.status_code == 200 and "Einziges Thema" in page.text


def test_single_newlines_are_line_breaks(people, client):
    erika = people.customer()
    topic_id = open_topic(erika, "Gruß", "Danke für die Hilfe!\nViele Grüße\nErika")
    assert "Viele Grüße<br>\nErika" in client.get(f"/t/{topic_id}").text
