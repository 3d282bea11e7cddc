"""A topic's solution and "Was this helpful?" through HTTP: who may mark, what readers,
guests and staff see at once (page cache, fragments), votes, and the search queue row."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from board.db import search_queue, solution_votes, sync_engine, topics
from tests.conftest import count_statements, page_selects
from tests.test_search import open_topic, reply

QUESTION = "Der Drucker zieht kein Papier ein. Was kann ich tun?"
ANSWER = "Öffnen Sie die hintere Klappe und entfernen Sie den Transportriegel."


def fetch(settings, statement):
    engine = sync_engine(settings)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    engine.dispose()
    return rows


def solution_of(settings, topic_id: int) -> int | None:
    return fetch(settings, sa.select(topics.c.solution_post_id).where(topics.c.id == topic_id))[0][
        0
    ]


def mark(person, post_id: int, solved: str = "1"):
    return person.submit(f"/p/{post_id}/solution", {"solved": solved})


def vote(person, post_id: int, helpful: str):
    return person.submit(f"/p/{post_id}/helpful", {"helpful": helpful})


@pytest.fixture
def asked(people):
    """A customer's question, a staff answer and a third person's reply."""
    author = people.customer()
    staff = people.staff()
    topic_id = open_topic(author, "Drucker zieht kein Papier ein", QUESTION)
    answer_id = reply(staff, topic_id, ANSWER)
    other_id = reply(people.customer("Max Muster"), topic_id, "Bei mir auch!")
    return author, staff, topic_id, answer_id, other_id


def solution_box(html: str) -> str:
    match = re.search(r'<section class="solution" id="solution".*?</section>', html, re.S)
    return match.group(0) if match else ""


@pytest.mark.postgresql
def test_the_author_marks_a_reply_and_it_shows_under_the_question(asked, settings, client):
    author, _staff, topic_id, answer_id, _other = asked
    response = mark(author, answer_id)
    assert response.status_code == 303
    assert response.headers["location"] == f"/t/{topic_id}#solution"
    assert solution_of(settings, topic_id) == answer_id
    page = client.get(f"/t/{topic_id}").text
    box = solution_box(page)
    assert "Lösung" in box and "Transportriegel" in box and "Administrator" in box
    # Right under the question: after the first post, before the first reply.
    question_at = page.index(QUESTION)
    assert question_at < page.index('id="solution"') < page.index(f'id="p{answer_id}"')
    assert 'class="badge badge-solved"' in page  # "Gelöst" beside the title
    category = client.get("/c/technik-und-fragen").text
    row = re.search(
        r"<tr[^>]*>(?:(?!</tr>).)*Drucker zieht kein Papier ein.*?</tr>", category, re.S
    )
    assert "Gelöst" in row.group(0)
    # The search queue row came with it, in the same transaction: the index learns it.
    queued = fetch(
        settings, sa.select(search_queue.c.doc_id).where(search_queue.c.doc_type == "topic")
    )
    assert (topic_id,) in queued


def test_unmarking_takes_the_solution_away(asked, settings, client):
    author, _staff, topic_id, answer_id, _other = asked
    mark(author, answer_id)
    response = mark(author, answer_id, "0")
    assert response.status_code == 303
    assert solution_of(settings, topic_id) is None
    page = client.get(f"/t/{topic_id}").text
    assert 'id="solution"' not in page and "badge-solved" not in page
    assert "Gelöst" not in client.get("/c/technik-und-fragen").text


def test_guests_cached_pages_show_a_new_solution_at_once(asked, client):
    author, _staff, topic_id, answer_id, _other = asked
    for path in (f"/t/{topic_id}", "/c/technik-und-fragen"):  # cached for guests now
        assert "Gelöst" not in client.get(path).text
        assert "Gelöst" not in client.get(path).text
    mark(author, answer_id)
    assert 'id="solution"' in client.get(f"/t/{topic_id}").text
    assert "Gelöst" in client.get("/c/technik-und-fragen").text
    mark(author, answer_id, "0")
    assert 'id="solution"' not in client.get(f"/t/{topic_id}").text


def test_the_posts_rendered_fragment_follows_the_mark(asked):
    """A logged-in reader's post blocks come from the fragment cache: the "Solution" badge
    on the post itself must appear and go with the mark."""
    author, staff, topic_id, answer_id, _other = asked
    reader = asked[0]
    badge = re.compile(rf'id="p{answer_id}".*?badge-solved.*?</p>', re.S)
    assert not badge.search(reader.get(f"/t/{topic_id}").text.split('class="post-actions"')[0])
    mark(staff, answer_id)
    page = reader.get(f"/t/{topic_id}").text
    post = page[page.index(f'id="p{answer_id}"') :]
    assert "badge-solved" in post[: post.index("post-body")]
    mark(author, answer_id, "0")
    page = reader.get(f"/t/{topic_id}").text
    post = page[page.index(f'id="p{answer_id}"') :]
    assert "badge-solved" not in post[: post.index("post-body")]


def test_someone_elses_topic_cannot_be_marked(asked, people, settings):
    _author, _staff, topic_id, answer_id, _other = asked
    stranger = people.customer("Sabine Sonne")
    response = mark(stranger, answer_id)
    assert response.status_code == 403
    assert "Nur wer das Thema eröffnet hat" in response.text
    assert solution_of(settings, topic_id) is None
    assert "Als Lösung markieren" not in stranger.get(f"/t/{topic_id}").text


def test_guests_and_forms_without_a_token_change_nothing(asked, client, settings):
    author, _staff, topic_id, answer_id, _other = asked
    assert client.post(f"/p/{answer_id}/solution", data={"solved": "1"}).status_code in (401, 403)
    response = author.client.post(f"/p/{answer_id}/solution", data={"solved": "1"})
    assert response.status_code == 403
    assert solution_of(settings, topic_id) is None


def test_a_locked_topic_is_marked_by_staff_not_by_its_author(asked, settings):
    author, staff, topic_id, answer_id, _other = asked
    staff.submit(f"/t/{topic_id}/moderate", {"action": "lock"})
    assert mark(author, answer_id).status_code == 403
    assert "Als Lösung markieren" not in author.get(f"/t/{topic_id}").text
    assert mark(staff, answer_id).status_code == 303
    assert solution_of(settings, topic_id) == answer_id


def test_the_question_and_deleted_posts_are_no_solution(asked, settings, people):
    author, staff, topic_id, answer_id, other_id = asked
    first_post = fetch(settings, sa.select(topics.c.first_post_id).where(topics.c.id == topic_id))
    response = mark(author, first_post[0][0])
    assert response.status_code == 400
    assert "Die Frage selbst kann nicht ihre Lösung sein." in response.text
    assert QUESTION in response.text  # the topic, shown again with the message
    staff.submit(f"/p/{other_id}/delete", {})
    assert mark(author, other_id).status_code == 404  # deleted: gone for its readers
    assert mark(staff, other_id).status_code == 400
    assert mark(author, answer_id, "maybe").status_code == 400
    assert mark(author, 999_999).status_code == 404
    assert solution_of(settings, topic_id) is None


def test_deleting_the_solution_unmarks_it(asked, settings, client):
    author, staff, topic_id, answer_id, _other = asked
    mark(author, answer_id)
    staff.submit(f"/p/{answer_id}/delete", {})
    assert solution_of(settings, topic_id) is None
    assert 'id="solution"' not in client.get(f"/t/{topic_id}").text


# --- "Was this helpful?" ---------------------------------------------------------------------


def votes(settings, post_id: int) -> list[tuple[int, bool]]:
    return [
        tuple(row)
        for row in fetch(
            settings,
            sa.select(solution_votes.c.user_id, solution_votes.c.helpful)
            .where(solution_votes.c.post_id == post_id)
            .order_by(solution_votes.c.user_id),
        )
    ]


@pytest.mark.postgresql
def test_one_vote_per_person_changeable_counts_for_staff_only(asked, people, settings):
    author, staff, topic_id, answer_id, _other = asked
    mark(author, answer_id)
    reader = people.customer("Sabine Sonne")
    page = reader.get(f"/t/{topic_id}").text
    assert "War das hilfreich?" in page and 'id="vote-counts"' not in page
    assert vote(reader, answer_id, "yes").status_code == 303
    assert vote(author, answer_id, "yes").status_code == 303
    assert votes(settings, answer_id) == [(author.user_id, True), (reader.user_id, True)]
    assert vote(reader, answer_id, "no").status_code == 303  # changed, not added
    assert votes(settings, answer_id) == [(author.user_id, True), (reader.user_id, False)]
    box = solution_box(reader.get(f"/t/{topic_id}").text)
    assert re.search(r'value="no"[^>]*aria-pressed="true"', box)
    assert re.search(r'value="yes"[^>]*aria-pressed="false"', box)
    assert "Hilfreich:" not in box  # counts are for the team
    staff_box = solution_box(staff.get(f"/t/{topic_id}").text)
    assert "Hilfreich: 1 ja, 1 nein" in staff_box


def test_votes_are_refused_where_they_make_no_sense(asked, people, client, settings):
    author, staff, topic_id, answer_id, other_id = asked
    reader = people.customer("Sabine Sonne")
    response = vote(reader, answer_id, "yes")  # not (yet) the solution
    assert response.status_code == 400
    assert "nicht mehr die Lösung" in response.text
    mark(author, answer_id)
    assert vote(staff, answer_id, "yes").status_code == 403  # the answer's own author
    assert "War das hilfreich?" not in solution_box(staff.get(f"/t/{topic_id}").text)
    assert vote(reader, answer_id, "vielleicht").status_code == 400
    assert vote(reader, other_id, "yes").status_code == 400
    assert client.post(f"/p/{answer_id}/helpful", data={"helpful": "yes"}).status_code in (401, 403)
    assert reader.client.post(f"/p/{answer_id}/helpful", data={"helpful": "yes"}).status_code == 403
    assert "Zum Antworten anmelden" in solution_box(client.get(f"/t/{topic_id}").text)
    assert votes(settings, answer_id) == []


def test_a_topic_page_with_a_solution_costs_no_query_per_post(asked, app, people):
    author, _staff, topic_id, answer_id, _other = asked
    mark(author, answer_id)
    reader = people.customer("Sabine Sonne")
    vote(reader, answer_id, "yes")

    def selects() -> int:
        statements: list[str] = []
        count_statements(app, reader.client, statements)
        assert reader.get(f"/t/{topic_id}").status_code == 200
        return len(page_selects(statements))

    before = selects()
    for number in range(5):
        reply(author, topic_id, f"Noch eine Frage Nummer {number}")
    assert selects() == before
