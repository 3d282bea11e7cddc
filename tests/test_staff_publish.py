"""Publishing a solved conversation as a forum topic: the redaction, the draft, the endpoint."""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa

from board import i18n
from board.db import (
    conversation_events,
    conversations,
    messages,
    posts,
    sync_engine,
    topics,
    utcnow,
)
from board.staff.publish import question_and_answer, redact
from tests.conftest import category_id, csrf_from

ENGLISH = {"accept-language": "en"}  # the draft's labels and placeholders in English


@pytest.fixture
def english():
    """Unit tests read the English placeholders, whatever the German catalog says."""
    token = i18n.current_locale.set("en")
    yield
    i18n.current_locale.reset(token)


# --- redaction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        # names: in full, by each part, any case, possessive, transliterated
        ("Ich bin Erika Mustermann.", ["Erika Mustermann"], "Ich bin [Name]."),
        ("Hallo erika, MUSTERMANN hier", ["Erika Mustermann"], "Hallo [Name], [Name] hier"),
        ("Erikas Paket kam", ["Erika Mustermann"], "[Name] Paket kam"),
        ("Grüße von Jürgen Müller", ["Jürgen Müller"], "Grüße von [Name]"),
        ("Herr Mueller und Juergen", ["Jürgen Müller"], "Herr [Name] und [Name]"),
        ("Gruß Anna-Lena", ["Anna-Lena Weiß"], "Gruß [Name]"),
        ("Lena und Anna", ["Anna-Lena Weiß"], "[Name] und [Name]"),
        ("Frau Weiß schreibt", ["Anna-Lena Weiß"], "Frau [Name] schreibt"),
        # a name inside another word stays, and so do short parts and particles
        (
            "Die Route ist gut, gute Nacht. Ute",
            ["Ute Schmidt"],
            "Die Route ist gut, gute Nacht. [Name]",
        ),
        ("Annahme und Annabell", ["Anna Lo"], "Annahme und Annabell"),
        ("von Berlin nach der Heide", ["Karl von der Heide"], "von Berlin nach der [Name]"),
        ("Schöne Grüße", ["Schön"], "Schöne Grüße"),
        ("Gruß [Name]", ["Name Test"], "Gruß [Name]"),
        # contact data
        ("Mail: erika.mustermann+shop@example.com.", [], "Mail: [Email]."),
        ("IBAN DE89 3704 0044 0532 0130 00 bitte", [], "IBAN [IBAN] bitte"),
        ("IBAN: DE89370400440532013000", [], "IBAN: [IBAN]"),
        ("Tel. +49 (0)170 123 45 67", [], "Tel. [Phone]"),
        ("Ruf an: 030/1234567 oder 0170-1234567", [], "Ruf an: [Phone] oder [Phone]"),
        ("(030) 12345678 tagsüber", [], "[Phone] tagsüber"),
        ("Telefon 0049 170 1234567", [], "Telefon [Phone]"),
        # numbers that identify an order, an invoice, a customer or a ticket
        ("Bestellung 4711234 ist weg", [], "Bestellung [Number] ist weg"),
        ("Bestellung 4711 ist weg", [], "Bestellung [Number] ist weg"),
        ("Bestellnummer: 815", [], "Bestellnummer: [Number]"),
        ("Kd.-Nr. 10023 und Kundennummer 4711", [], "Kd.-Nr. [Number] und Kundennummer [Number]"),
        ("Rechnung RE-2024-0042 vom Mai", [], "Rechnung [Number] vom Mai"),
        ("Siehe Ticket #1042 und #2043", [], "Siehe Ticket #[Number] und [Number]"),
        ("Die Sendung 00340434161094042557 kam", [], "Die Sendung [Number] kam"),
        ("Nummer `00340434161094042557`", [], "Nummer `[Number]`"),
        ("Code 123456 eingeben", [], "Code [Number] eingeben"),
        # German street addresses
        ("Ich wohne Musterstraße 12.", [], "Ich wohne [Address]."),
        ("Musterstraße 12, 12345 Berlin", [], "[Address]"),
        ("Karl-Marx-Str. 3a, Berliner Straße 5-7", [], "[Address], [Address]"),
        ("Am Ende: Lindenweg 4", [], "Am Ende: [Address]"),
        # what stays
        ("3 Tage, M4, 2 Stück, 0,5 Watt, 12,90 €", [], "3 Tage, M4, 2 Stück, 0,5 Watt, 12,90 €"),
        (
            "Firmware 3.2.10, 2,4 GHz, FRITZ!Box 7590",
            [],
            "Firmware 3.2.10, 2,4 GHz, FRITZ!Box 7590",
        ),
        ("am 01.02.2024 um 10:45, 1234 Stück", [], "am 01.02.2024 um 10:45, 1234 Stück"),
        ("Fußweg 5 Minuten, Rückweg 3 Tage", [], "Fußweg 5 Minuten, Rückweg 3 Tage"),
        ("Bestellungen und Rechnungen 2 Stück", [], "Bestellungen und Rechnungen 2 Stück"),
        ("Rechnung vom 12.03.", [], "Rechnung vom 12.03."),
        ("Siehe https://shop.example/downloads.", [], "Siehe https://shop.example/downloads."),
        # links with a query string carry ids and tokens
        ("Hier: https://dhl.example/track?id=4711&k=abc.", [], "Hier: [Link]."),
        ("[Sendung](https://dhl.example/t?n=1)", [], "[Sendung]([Link])"),
    ],
)
def test_redact(english, text, names, expected):
    assert redact(text, names) == expected


def test_redact_keeps_markdown_and_handles_combining_accents(english):
    text = "**Hallo Rene\u0301**,\n\n- Bestellung 4711\n- 2 Stück\n\nGruß\nRené"
    assert redact(text, ["René Kühn"]) == (
        "**Hallo [Name]**,\n\n- Bestellung [Number]\n- 2 Stück\n\nGruß\n[Name]"
    )


def test_redact_without_names_and_with_empty_ones(english):
    assert redact("Hallo Welt 12", []) == "Hallo Welt 12"
    assert redact("Hallo Welt", [None, "", "  ", "Al"]) == "Hallo Welt"


def test_redact_is_fast_on_long_digit_runs(english):
    # No pattern may backtrack exponentially on what a customer pastes.
    text = ("0" + "1" * 60 + "x ") * 200 + "+49 " + "12 " * 500 + "z"
    assert "[Number]" in redact(text, ["Erika Mustermann"])


def test_placeholders_are_translated():
    token = i18n.current_locale.set("de")
    try:
        german = redact("mail: a@b.de, Tel. 0170 1234567, Gruß Erika", ["Erika"])
    finally:
        i18n.current_locale.reset(token)
    assert "a@b.de" not in german and "1234567" not in german and "Erika" not in german


def test_question_and_answer_merges_turns_and_keeps_blocks_apart(english):
    text = question_and_answer(
        [
            (False, "Paket fehlt."),
            (False, "Noch da?"),
            (True, "- Schritt eins\n- Schritt zwei"),
            (False, "  "),
            (False, "Danke!"),
        ]
    )
    assert text == (
        "**Question:** Paket fehlt.\n\nNoch da?\n\n"
        "**Answer:**\n\n- Schritt eins\n- Schritt zwei\n\n"
        "**Question:** Danke!"
    )


# --- helpers -----------------------------------------------------------------------------


def execute(settings, statement):
    engine = sync_engine(settings)
    with engine.begin() as connection:
        result = connection.execute(statement)
        rows = result.all() if result.returns_rows else None
    engine.dispose()
    return rows


def open_conversation(person, body: str) -> int:
    page = person.get("/inbox/new").text
    response = person.client.post(
        "/inbox/new",
        data={"csrf_token": csrf_from(page), "body": body},
        files=[("attachments", ("", b"", "application/octet-stream"))],
    )
    assert response.status_code == 303, response.text[:2000]
    return int(response.headers["location"].rsplit("/", 1)[1])


def add_message(settings, number: int, author_id: int | None, body: str, internal=False):
    conversation_id = execute(
        settings, sa.select(conversations.c.id).where(conversations.c.number == number)
    )[0][0]
    execute(
        settings,
        messages.insert().values(
            conversation_id=conversation_id,
            author_id=author_id,
            body=body,
            body_html=f"<p>{body}</p>",
            internal=internal,
            created_at=utcnow(),
        ),
    )


def set_status(settings, number: int, status: str, **values):
    execute(
        settings,
        conversations.update()
        .where(conversations.c.number == number)
        .values(status=status, **values),
    )


def conversation_row(settings, number: int):
    return execute(settings, sa.select(conversations).where(conversations.c.number == number))[0]


def editor_fields(html: str) -> tuple[str, str]:
    title = re.search(r'<input id="field-title" name="title" type="text" value="([^"]*)"', html)
    body = re.search(r'<textarea id="field-body" name="body"[^>]*>(.*?)</textarea>', html, re.S)
    assert title and body, "the page has no editor"
    return unescape(title.group(1)), unescape(body.group(1))


@pytest.fixture
def solved(people, settings):
    """A solved conversation of Erika Mustermann: her question, an answer, an internal note."""
    erika = people.customer("Erika Mustermann", "erika.mustermann@example.com")
    number = open_conversation(
        erika,
        "Bestellung 4711234 ist nicht angekommen, Erika\n\n"
        "Ich wohne Musterstraße 12, 12345 Berlin, Tel. 0170 1234567, "
        "erika.mustermann@example.com",
    )
    staff = people.staff()
    add_message(settings, number, staff.user_id, "Kundin hat schon 3 Mal angerufen", internal=True)
    add_message(settings, number, staff.user_id, "Hallo Frau Mustermann, das Paket ist unterwegs.")
    add_message(settings, number, erika.user_id, "Danke, ist da!")
    set_status(settings, number, "solved")
    return number, erika, staff


# --- the editor --------------------------------------------------------------------------


def test_editor_offers_the_redacted_public_messages_as_questions_and_answers(solved):
    number, _erika, staff = solved
    page = staff.get(f"/staff/t/{number}/publish", headers=ENGLISH)
    assert page.status_code == 200
    title, body = editor_fields(page.text)
    assert title == (
        "Bestellung [Number] ist nicht angekommen, [Name] "
        "Ich wohne [Address], Tel. [Phone], [Email]"
    )
    assert body == (
        "**Question:** Bestellung [Number] ist nicht angekommen, [Name]\n\n"
        "Ich wohne [Address], Tel. [Phone], [Email]\n\n"
        "**Answer:** Hallo Frau [Name], das Paket ist unterwegs.\n\n"
        "**Question:** Danke, ist da!"
    )
    assert "angerufen" not in page.text  # the internal note
    editor = page.text.split('<main id="main"', 1)[1]  # the header's bell names the subject
    assert "Mustermann" not in editor and "4711234" not in editor
    assert 'name="csrf_token"' in page.text and 'name="category"' in page.text
    assert "already-published" not in page.text


def test_guest_names_are_redacted_too(client, people, settings):
    page = client.get("/contact").text
    response = client.post(
        "/contact",
        data={
            "csrf_token": csrf_from(page),
            "name": "Ute Sommerfeld",
            "email": "ute@example.net",
            "body": "Die Route stimmt nicht. Gruß Ute Sommerfeld",
        },
        files=[("attachments", ("", b"", "application/octet-stream"))],
    )
    assert response.status_code == 303, response.text[:2000]
    number = execute(settings, sa.select(sa.func.max(conversations.c.number)))[0][0]
    set_status(settings, number, "solved")
    staff = people.staff()
    _title, body = editor_fields(staff.get(f"/staff/t/{number}/publish", headers=ENGLISH).text)
    assert body == "**Question:** Die Route stimmt nicht. Gruß [Name]"


# --- publishing --------------------------------------------------------------------------


def test_staff_publish_the_edited_text_as_a_topic_and_the_conversation_links_it(
    solved, settings, new_client
):
    number, _erika, staff = solved
    form_page = f"/staff/t/{number}/publish"
    category = category_id(settings, "bestellung-und-versand")
    response = staff.submit(
        form_page,
        {
            "title": "Paket nicht angekommen",
            "body": "**Frage:** Wo ist mein Paket?\n\n**Antwort:** Unterwegs.",
            "category": str(category),
        },
        form_page=form_page,
    )
    assert response.status_code == 303
    topic_id = int(response.headers["location"].removeprefix("/t/"))
    topic = execute(settings, sa.select(topics).where(topics.c.id == topic_id))[0]
    assert (topic.title, topic.category_id, topic.author_id) == (
        "Paket nicht angekommen",
        category,
        staff.user_id,
    )
    post = execute(settings, sa.select(posts).where(posts.c.topic_id == topic_id))
    assert [row.body for row in post] == [
        "**Frage:** Wo ist mein Paket?\n\n**Antwort:** Unterwegs."
    ]
    conversation = conversation_row(settings, number)
    assert conversation.forum_topic_id == topic_id and conversation.status == "solved"
    events = execute(
        settings,
        sa.select(conversation_events).where(
            conversation_events.c.conversation_id == conversation.id,
            conversation_events.c.action == "published",
        ),
    )
    assert [(e.actor_id, e.old_value, e.new_value) for e in events] == [
        (staff.user_id, None, str(topic_id))
    ]
    public = new_client().get(f"/t/{topic_id}").text  # guests see it at once (page cache)
    assert "Wo ist mein Paket?" in public and "Paket nicht angekommen" in public


def test_a_failure_while_linking_leaves_no_topic_behind(solved, settings, monkeypatch):
    """The topic and the conversation's link to it are one transaction."""
    from board.conversations import workflow

    number, _erika, staff = solved

    async def history_fails(*args, **kwargs):
        raise RuntimeError("the history could not be written")

    monkeypatch.setattr(workflow, "record_event", history_fails)
    before = execute(settings, sa.select(sa.func.count()).select_from(topics))[0][0]
    form_page = f"/staff/t/{number}/publish"
    data = {"title": "Halb veröffentlicht", "body": "Text", "category": "2"}
    with pytest.raises(RuntimeError):
        staff.submit(form_page, data, form_page=form_page)
    assert execute(settings, sa.select(sa.func.count()).select_from(topics))[0][0] == before
    assert conversation_row(settings, number).forum_topic_id is None


def test_staff_without_admin_rights_may_publish(people, settings):
    erika = people.customer()
    number = open_conversation(erika, "Wie setze ich den Dimmer zurück?")
    set_status(settings, number, "solved")
    sven = people.staff(admin=False)
    form_page = f"/staff/t/{number}/publish"
    response = sven.submit(
        form_page,
        {"title": "Dimmer zurücksetzen", "body": "Reset-Taste halten.", "category": "2"},
        form_page=form_page,
    )
    assert response.status_code == 303
    assert conversation_row(settings, number).forum_topic_id is not None


def test_a_published_conversation_shows_its_topic_and_may_be_published_again(solved, settings):
    number, _erika, staff = solved
    form_page = f"/staff/t/{number}/publish"
    data = {"title": "Erste Fassung", "body": "Text", "category": "2"}
    first = int(staff.submit(form_page, data, form_page=form_page).headers["location"][3:])
    page = staff.get(form_page).text
    notice = re.search(
        r'<p class="notice notice-warning" id="already-published">(.*?)</p>', page, re.S
    )
    assert notice and f'href="/t/{first}"' in notice.group(1) and "Erste Fassung" in notice.group(1)
    data["title"] = "Zweite Fassung"
    second = int(staff.submit(form_page, data, form_page=form_page).headers["location"][3:])
    assert second != first
    conversation = conversation_row(settings, number)
    assert conversation.forum_topic_id == second
    events = execute(
        settings,
        sa.select(conversation_events.c.old_value, conversation_events.c.new_value)
        .where(
            conversation_events.c.conversation_id == conversation.id,
            conversation_events.c.action == "published",
        )
        .order_by(conversation_events.c.id),
    )
    assert [tuple(e) for e in events] == [(None, str(first)), (str(first), str(second))]


# --- refusals ----------------------------------------------------------------------------


def topic_count(settings) -> int:
    return execute(settings, sa.select(sa.func.count()).select_from(topics))[0][0]


def test_empty_title_is_refused_and_the_text_kept(solved, settings):
    number, _erika, staff = solved
    form_page = f"/staff/t/{number}/publish"
    before = topic_count(settings)
    response = staff.submit(
        form_page,
        {"title": "  ", "body": "Mein **bearbeiteter** Text", "category": "3"},
        form_page=form_page,
    )
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text and 'id="error-field-title"' in response.text
    _title, body = editor_fields(response.text)
    assert body == "Mein **bearbeiteter** Text"
    assert '<option value="3" selected>' in response.text
    assert topic_count(settings) == before
    assert conversation_row(settings, number).forum_topic_id is None


@pytest.mark.parametrize("category", ["", "999", "abc"])
def test_a_missing_or_unknown_category_is_refused(solved, settings, category):
    number, _erika, staff = solved
    form_page = f"/staff/t/{number}/publish"
    before = topic_count(settings)
    response = staff.submit(
        form_page, {"title": "Titel", "body": "Text", "category": category}, form_page=form_page
    )
    assert response.status_code == 400 and "error-category" in response.text
    assert editor_fields(response.text) == ("Titel", "Text")
    assert topic_count(settings) == before


def test_empty_body_is_refused(solved, settings):
    number, _erika, staff = solved
    form_page = f"/staff/t/{number}/publish"
    response = staff.submit(
        form_page, {"title": "Titel", "body": "", "category": "2"}, form_page=form_page
    )
    assert response.status_code == 400 and "error-body" in response.text
    assert editor_fields(response.text)[0] == "Titel"


def test_a_form_without_csrf_token_is_refused(solved, settings):
    number, _erika, staff = solved
    before = topic_count(settings)
    response = staff.client.post(
        f"/staff/t/{number}/publish", data={"title": "T", "body": "B", "category": "2"}
    )
    assert response.status_code == 403
    assert topic_count(settings) == before


@pytest.mark.parametrize(
    ("status", "kind"),
    [("open", "support"), ("pending", "support"), ("spam", "support"), ("solved", "invoice")],
)
def test_only_solved_support_conversations_can_be_published(solved, settings, status, kind):
    number, _erika, staff = solved
    set_status(settings, number, status, kind=kind)
    form_page = f"/staff/t/{number}/publish"
    page = staff.get(form_page, headers=ENGLISH)
    assert page.status_code == 409
    assert "Only solved conversations can be published." in page.text
    token = csrf_from(staff.get("/").text)
    response = staff.client.post(
        form_page, data={"csrf_token": token, "title": "T", "body": "B", "category": "2"}
    )
    assert response.status_code == 409
    assert conversation_row(settings, number).forum_topic_id is None


def test_customers_are_refused_and_visitors_sent_to_log_in(solved, client, settings):
    number, erika, _staff = solved
    path = f"/staff/t/{number}/publish"
    assert erika.get(path).status_code == 403
    token = csrf_from(erika.get("/").text)
    data = {"csrf_token": token, "title": "T", "body": "B", "category": "2"}
    assert erika.client.post(path, data=data).status_code == 403
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2Fstaff%2Ft%2F{number}%2Fpublish"
    token = csrf_from(client.get("/").text)
    assert client.post(path, data={**data, "csrf_token": token}).status_code == 401
    assert conversation_row(settings, number).forum_topic_id is None


def test_unknown_conversation_is_not_found(people):
    staff = people.staff()
    assert staff.get("/staff/t/999999/publish").status_code == 404
