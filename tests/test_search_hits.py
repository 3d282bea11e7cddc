"""Search hits and suggestions told apart, through HTTP: category, date, replies and solved
status on each; solved topics first among comparable hits; snippets from a sentence's
start, tables kept readable, stop words unmarked; "Not found? Write to us" under every
list; the solved flag in the index, updated through the search queue."""

from __future__ import annotations

import re

import pytest

from board.search import querying
from tests.conftest import count_statements, index_now, page_selects
from tests.test_search import hits, open_topic, refs, reply, search, suggested

SHIPPING = "bestellung-und-versand"


def mark(person, post_id: int, solved: str = "1") -> None:
    assert person.submit(f"/p/{post_id}/solution", {"solved": solved}).status_code == 303


def hit_blocks(html: str) -> dict[int, str]:
    """The HTML of each hit on a results page, by topic id or ticket number."""
    blocks = re.findall(
        r'<li class="search-hit" data-kind="\w+" data-ref="(\d+)">(.*?)</li>', html, re.S
    )
    return {int(ref): block for ref, block in blocks}


def snippet_of(html: str, ref: int) -> str:
    """The hit's snippet, its <mark> tags without their classes."""
    snippet = re.search(r'<p class="hit-snippet">(.*?)</p>', hit_blocks(html)[ref], re.S).group(1)
    return re.sub(r"<mark[^>]*>", "<mark>", snippet)


def test_each_hit_shows_category_date_replies_and_solved(people, client, app):
    staff, customer = people.staff(), people.customer()
    solved = open_topic(customer, "Gutschein einlösen", "Wo gebe ich den Gutschein ein?")
    answer = reply(staff, solved, "Im Warenkorb unter dem Feld Gutscheincode.")
    reply(customer, solved, "Danke, Gutschein hat geklappt.")
    mark(customer, answer)
    open_topic(customer, "Gutschein abgelaufen", "Mein Gutschein ist abgelaufen.", slug=SHIPPING)
    index_now(app, client)
    page = search(client, "Gutschein").text
    blocks = hit_blocks(page)
    assert len(blocks) == 2
    first = blocks[solved]
    assert "Gelöst" in first and "Technik &amp; Fragen" in first and "2 Antworten" in first
    assert re.search(r'<time datetime="[^"]+">\d\d\.\d\d\.\d{4}</time>', first)
    other = next(block for ref, block in blocks.items() if ref != solved)
    assert "Gelöst" not in other and "Bestellung &amp; Versand" in other and "0 Antworten" in other
    english = client.get("/search", params={"q": "Gutschein"}, headers={"Accept-Language": "en"})
    assert "2 replies" in english.text and "Solved" in english.text


def test_suggestions_carry_the_same_facts(people, client, app):
    staff, customer = people.staff(), people.customer()
    topic = open_topic(customer, "Drucker Papierstau Kassette", "Papierstau in der Kassette.")
    answer = reply(staff, topic, "Kassette herausziehen, Papierstau lösen.")
    mark(staff, answer)
    index_now(app, client)
    found = suggested(client, "Mein Drucker meldet Papierstau in der Kassette")
    assert found[0]["id"] == topic
    assert found[0]["solved"] is True and found[0]["solved_label"] == "Gelöst"
    assert found[0]["category"] == "Technik & Fragen"
    assert found[0]["replies"] == 1 and found[0]["replies_label"] == "1 Antwort"
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4}", found[0]["date"])


def test_a_marked_solution_reaches_the_index_through_the_queue(people, client, app):
    staff = people.staff()
    topic = open_topic(staff, "Rücksendeetikett drucken", "Wo finde ich das Rücksendeetikett?")
    answer = reply(staff, topic, "Im Kundenbereich unter Bestellungen.")
    index_now(app, client)

    def stored_solved() -> str:
        with querying.borrowed_searcher(app.state.settings) as opened:
            return opened.searcher.document(key=f"t{topic}")["solved"]

    assert stored_solved() == "0"
    mark(staff, answer)
    index_now(app, client)
    assert stored_solved() == "1"
    mark(staff, answer, "0")
    index_now(app, client)
    assert stored_solved() == "0"


def test_solved_topics_rank_first_among_comparable_hits(people, client, app):
    staff = people.staff()
    body = "Die Lieferung nach Österreich dauert drei bis fünf Werktage."
    unsolved = open_topic(staff, "Lieferung nach Österreich", body)
    # A little longer, so a little weaker a match than the other one.
    solved = open_topic(staff, "Lieferung nach Österreich", body + " Feiertage zählen nicht.")
    answer = reply(staff, solved, "Genau so.")
    reply(staff, unsolved, "Genau so.")
    index_now(app, client)
    assert refs(client, "Lieferung Österreich")[:2] == [unsolved, solved]
    mark(staff, answer)
    index_now(app, client)
    assert refs(client, "Lieferung Österreich")[:2] == [solved, unsolved]


def test_a_solved_topic_does_not_pass_a_much_better_match(people, client, app):
    staff = people.staff()
    exact = open_topic(
        staff, "Rechnung als PDF herunterladen", "Die Rechnung als PDF laden Sie im Konto herunter."
    )
    weak = open_topic(staff, "Kontakt zum Versand", "Fragen zum Versand, auch zur Rechnung.")
    answer = reply(staff, weak, "Schreiben Sie uns.")
    mark(staff, answer)
    index_now(app, client)
    assert refs(client, "Rechnung PDF herunterladen")[:2] == [exact, weak]


def test_snippets_start_at_a_sentence(people, client, app):
    staff = people.staff()
    filler = "Das Gerät hat vier Anschlüsse und ein robustes Gehäuse aus Aluminium. " * 4
    body = filler + "Zum Zurücksetzen halten Sie die Taste zehn Sekunden lang gedrückt. Fertig."
    topic = open_topic(staff, "Router einrichten", body)
    index_now(app, client)
    snippet = snippet_of(search(client, "zehn Sekunden").text, topic)
    assert snippet.startswith("Zum Zurücksetzen halten Sie die Taste <mark>zehn</mark>"), snippet


def test_a_long_sentence_is_cut_at_a_word_with_an_ellipsis(people, client, app):
    staff = people.staff()
    body = "Wort " * 80 + "Kabelbinder am Ende eines sehr langen Satzes"
    topic = open_topic(staff, "Ein langer Satz", body)
    index_now(app, client)
    snippet = snippet_of(search(client, "Kabelbinder").text, topic)
    assert snippet.startswith("… Wort") and "<mark>Kabelbinder</mark>" in snippet, snippet


def test_a_table_is_not_flattened_into_nonsense(people, client, app):
    staff = people.staff()
    table = (
        "Unsere Größen:\n\n| Größe | Brustumfang | Preis |\n|---|---|---|\n"
        "| S | 88 cm | 19 € |\n| M | 96 cm | 21 € |\n| XL | 112 cm | 25 € |\n"
    )
    topic = open_topic(staff, "Größentabelle Hemden", table)
    index_now(app, client)
    snippet = snippet_of(search(client, "Brustumfang 112").text, topic)
    assert "Größe: XL · <mark>Brustumfang</mark>: <mark>112</mark> cm" in snippet, snippet
    # Every line is one row, each cell after its column's heading (the last may be cut).
    row = re.compile(
        r"Größe: \w+ · (<mark>)?Brustumfang(</mark>)?: (<mark>)?\d+(</mark>)? cm · Preis: "
    )
    assert all(row.match(line) for line in snippet.split("\n")), snippet
    assert "S M XL" not in snippet and "88 cm 19" not in snippet


def test_stop_words_are_not_marked(people, client, app):
    staff = people.staff()
    topic = open_topic(
        staff, "Beschädigte Ware", "Die Ware war beschädigt, als die Pakete angekommen waren."
    )
    index_now(app, client)
    page = search(client, "Ware").text
    snippet = snippet_of(page, topic)
    assert "<mark>Ware</mark>" in snippet
    assert "<mark>war</mark>" not in snippet and "<mark>waren</mark>" not in snippet, snippet
    assert "<mark>Die</mark>" not in snippet
    title = re.search(r'class="hit-title"[^>]*>(.*?)</a>', hit_blocks(page)[topic]).group(1)
    assert re.sub(r"<mark[^>]*>", "<mark>", title) == "Beschädigte <mark>Ware</mark>"


@pytest.mark.parametrize("query", ["Lieferung", "Quantenverschränkung"])
def test_not_found_write_to_us_sits_under_every_list(people, client, app, query):
    staff = people.staff()
    open_topic(staff, "Lieferung", "Die Lieferung dauert zwei Tage.")
    index_now(app, client)
    line = re.compile(
        r'<p class="write-to-us" id="write-to-us">Nicht gefunden\? '
        r'<a href="([^"]+)">Schreiben Sie uns</a>'
    )
    guest_page = search(client, query).text
    assert line.search(guest_page).group(1) == "/contact"
    assert guest_page.index('id="write-to-us"') > guest_page.index(
        'id="result-count"' if query == "Lieferung" else 'id="no-results"'
    )
    customer = people.customer()
    assert line.search(search(customer, query).text).group(1) == "/inbox/new"
    assert 'id="write-to-us"' not in search(staff, query).text  # staff are written to


def test_the_facts_of_a_results_page_are_one_query(people, client, app):
    staff = people.staff()
    for number in range(6):
        open_topic(staff, f"Versandkosten Frage {number}", "Was kosten Versandkosten?")
    index_now(app, client)

    def selects(text: str) -> list[str]:
        statements: list[str] = []
        count_statements(app, client, statements)
        assert len(hits(client, text)) >= 1
        return page_selects(statements)

    many, one = selects("Versandkosten"), selects("Frage 3")
    assert len(many) == len(one)
    assert sum("FROM topics JOIN categories" in sql for sql in many) == 1
