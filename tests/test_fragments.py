"""Rendered fragments (board/fragments.py) are kept per everything they show: an edit, a
rename or a deletion shows at once, nobody sees another visitor's header, and the two
languages never mix. Every check reads the page a second time, so that it comes from the
cache that the first read filled."""

from __future__ import annotations

import re

from board.fragments import FragmentCache
from tests.conftest import submit
from tests.test_forum import open_topic, reply

TECH = "technik-und-fragen"


def post_ids(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="p(\d+)"', page)]


def twice(person, path: str) -> str:
    """The page after a first read has put its fragments in the cache."""
    person.get(path)
    return person.get(path).text


def test_an_edited_post_shows_at_once(people):
    erika, max_ = people.customer(), people.customer("Max Muster")
    topic = f"/t/{open_topic(erika, body='Erste Fassung des Textes')}"
    assert "Erste Fassung" in twice(max_, topic)
    post_id = post_ids(max_.get(topic).text)[0]
    edited = erika.submit(f"/p/{post_id}/edit", {"title": "T", "body": "Zweite Fassung"})
    assert edited.status_code == 303
    page = max_.get(topic).text
    assert "Zweite Fassung" in page and "Erste Fassung" not in page
    assert "Bearbeitet am" in page


def test_a_renamed_author_shows_at_once_in_every_post(people):
    erika, max_ = people.customer(), people.customer("Max Muster")
    topic_id = open_topic(erika)
    reply(erika, topic_id, "Noch eine Ergänzung")
    topic = f"/t/{topic_id}"
    assert twice(max_, topic).count("Erika Mustermann") >= 2
    renamed = erika.submit(
        "/account",
        {"action": "profile", "name": "Erika Beispiel", "email": erika.email},
        form_page="/account",
    )
    assert renamed.status_code == 303
    page = max_.get(topic).text
    assert "Erika Mustermann" not in page
    assert page.count("Erika Beispiel") >= 2


def test_a_new_post_by_the_author_updates_their_count_in_older_posts(people):
    erika, max_ = people.customer(), people.customer("Max Muster")
    topic_id = open_topic(erika)
    topic = f"/t/{topic_id}"
    before = re.findall(r"<dd>(\d+)</dd>", twice(max_, topic))
    reply(erika, topic_id, "Noch eine Ergänzung")
    after = re.findall(r"<dd>(\d+)</dd>", max_.get(topic).text)
    assert before == ["1"] and after == ["2", "2"]  # the first post's block counts anew


def test_a_deleted_post_disappears_at_once(people):
    erika, max_, staff = people.customer(), people.customer("Max Muster"), people.staff()
    topic_id = open_topic(erika)
    reply(erika, topic_id, "Bitte diesen Beitrag entfernen")
    topic = f"/t/{topic_id}"
    assert "Bitte diesen Beitrag entfernen" in twice(max_, topic)
    assert "Bitte diesen" in twice(staff, topic)
    doomed = post_ids(max_.get(topic).text)[-1]
    assert staff.submit(f"/p/{doomed}/delete", {}).status_code == 303
    assert "Bitte diesen Beitrag entfernen" not in max_.get(topic).text
    staff_view = staff.get(topic).text
    assert "Bitte diesen Beitrag entfernen" in staff_view and "Gelöscht" in staff_view


def test_nobody_sees_another_visitors_header(people):
    erika, max_ = people.customer(), people.customer("Max Muster")
    topic = f"/t/{open_topic(erika)}"
    erikas, maxs = twice(erika, topic), twice(max_, topic)
    header = re.compile(r'<header class="site-header">.*?</header>', re.S)
    assert erika.customer_number and max_.customer_number
    assert f"{erika.customer_number}<" in header.search(erikas).group(0)
    assert str(erika.customer_number) not in header.search(maxs).group(0)
    assert "Max Muster" not in header.search(erikas).group(0)
    # Each page's forms carry that visitor's own token.
    tokens = {
        re.search(r'name="csrf_token" value="([^"]+)"', page).group(1) for page in (erikas, maxs)
    }
    assert len(tokens) == 2


def test_the_header_counts_follow_what_happens(people):
    erika, staff = people.customer(), people.staff()
    number = int(
        re.search(
            r"/inbox/(\d+)",
            erika.submit(
                "/inbox/new", {"body": "Wo ist mein Paket?"}, form_page="/inbox/new"
            ).headers["location"],
        ).group(1)
    )
    badge = re.compile(r'id="unread-count" class="count-badge( is-zero)?"')
    assert badge.search(twice(erika, "/")).group(1) == " is-zero"
    answered = staff.submit(
        f"/staff/t/{number}/reply", {"body": "Ist unterwegs."}, form_page=f"/staff/t/{number}"
    )
    assert answered.status_code == 303
    assert badge.search(erika.get("/").text).group(1) is None  # one unread now
    assert 'id="bell-count" class="badge">1<' in erika.get("/").text


def test_german_and_english_never_mix(people, new_client):
    erika = people.customer()
    topic = f"/t/{open_topic(erika)}"
    german = twice(erika, topic)
    assert "Beitrag von" in german and "Mitglied seit" in german
    english_reader = people.customer("Max Muster")
    switched = submit(english_reader.client, "/language", {"locale": "en", "next": topic})
    assert switched.status_code == 303
    english = twice(english_reader, topic)
    assert "Post by" in english and "Member since" in english
    assert "Beitrag von" not in english and "Mitglied seit" not in english
    assert "Abmelden" not in english
    again = erika.get(topic).text
    assert "Post by" not in again and "Member since" not in again


def test_the_cache_stays_within_its_bounds():
    cache = FragmentCache(max_entries=3, max_bytes=1_000)
    for number in range(10):
        cache.get_or_render(number, lambda number=number: f"<p>{number}</p>")
    assert len(cache) == 3 and cache.size == len("<p>7</p>") * 3
    cache.get_or_render("big", lambda: "x" * 900)
    assert cache.size <= 1_000
    assert cache.get_or_render("huge", lambda: "y" * 5_000) == "y" * 5_000
    assert "huge" not in cache._entries  # larger than a hundredth: served, never kept
    renders = []
    cache.get_or_render("again", lambda: renders.append(1) or "a")
    cache.get_or_render("again", lambda: renders.append(1) or "b")
    assert renders == [1] and cache.hits >= 1
    # A page's posts key on their rows: the texts inside those rows count as well.
    rows_cache = FragmentCache(max_entries=10, max_bytes=1_000)
    rows_cache.get_or_render(("posts", (1, "x" * 300), (2, "y" * 300)), lambda: "z" * 9)
    assert rows_cache.size == 600 + 9 + len("posts")
    rows_cache.get_or_render(("posts", (3, "w" * 300), (4, "v" * 300)), lambda: "z" * 9)
    assert len(rows_cache) == 1 and rows_cache.size <= 1_000


def test_the_staff_conversation_forms_follow_every_change_and_each_viewer(people, settings):
    from tests.test_inbox import open_conversation

    erika, julia = people.customer(), people.staff()
    sven = people.staff(admin=False)
    number = open_conversation(erika, "Mein Paket ist nicht angekommen.")
    path = f"/staff/t/{number}"
    first = twice(julia, path)
    assert 'value="open" selected' in first or 'value="new" selected' in first

    julia.submit(f"{path}/update", {"status": "pending", "assignee": "me", "note": "Frage DHL"})
    page = twice(julia, path)
    assert '<option value="pending" selected>' in page and "Frage DHL" in page  # form, history
    seen = re.search(r'name="seen" value="(\d+)"', page).group(1)

    erika.submit(f"/inbox/{number}/reply", {"body": "Noch etwas: die Hausnummer ist 5a."})
    julia.submit(f"/staff/customers/{erika.user_id}", {"note": "Ruft oft an", "vip": "1"})
    page = twice(julia, path)
    assert re.search(r'name="seen" value="(\d+)"', page).group(1) != seen  # the new message
    assert "Ruft oft an" in page and 'name="vip" value="1" checked' in page

    # Each staff member's forms carry their own CSRF token, never the other's.
    theirs = twice(sven, path)
    tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', page))
    assert tokens and not tokens & set(re.findall(r'name="csrf_token" value="([^"]+)"', theirs))
    assert "(ich)" in theirs and theirs.count("(ich)") == 1


def test_readers_without_actions_share_the_posts_and_authors_keep_their_own_links(people):
    """A reader who may change no post gets the page's posts as one shared fragment; the
    authors on the same page still see their own edit links and nobody else's, and a marked
    solution shows at once to the readers of the shared fragment."""
    erika, max_ = people.customer(), people.customer("Max Muster")
    sabine = people.customer("Sabine Sonne")
    staff = people.staff()
    topic_id = open_topic(erika, body="Mein Drucker zieht kein Papier ein.")
    reply(max_, topic_id, "Die Andruckrolle reinigen hilft.")
    topic = f"/t/{topic_id}"
    first_id, answer_id = post_ids(twice(sabine, topic))

    def edit_links(page: str) -> set[int]:
        return {int(found) for found in re.findall(r'href="/p/(\d+)/edit"', page)}

    assert edit_links(sabine.get(topic).text) == set()
    assert edit_links(twice(erika, topic)) == {first_id}
    assert edit_links(twice(max_, topic)) == {answer_id}
    assert edit_links(sabine.get(topic).text) == set()

    assert staff.submit(f"/p/{answer_id}/solution", {"solved": "1"}).status_code == 303
    page = sabine.get(topic).text
    assert post_ids(page) == [first_id, answer_id]
    # The solution sits between the question and the answers, the answer carries its badge.
    assert (
        page.index(f'id="p{first_id}"')
        < page.index('id="solution"')
        < page.index(f'id="p{answer_id}"')
    )
    answer = page[page.index(f'id="p{answer_id}"') :]
    assert "badge-solved" in answer[: answer.index("post-body")]
