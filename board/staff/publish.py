"""Publishing a solved conversation as a public forum topic, personal data redacted first.

Staff open the editor from a solved conversation: its public messages (never internal
notes) arrive as questions and answers with names, addresses and numbers already replaced
by placeholders. Staff check the text, choose a category and publish; the conversation
remembers its topic and the status history records who published it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from databases import Database
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.accounts.redaction import full_name, name_parts, spellings
from board.conversations import writing
from board.db import messages, topics, users, write_transaction
from board.forum import queries as forum_queries
from board.i18n import gettext as _
from board.inbox import queries as inbox_queries
from board.markup import subject_from
from board.security import STAFF_ROLES, CurrentUser
from board.staff import canned
from board.web import (
    db,
    field,
    path_for,
    read_form,
    redirect,
    render,
    require_staff,
    settings_of,
)

Record = Any
TITLE_MAX = 200  # as a forum topic's title
BODY_MAX = 60_000


# --- redaction ---------------------------------------------------------------------------


def _placeholders() -> dict[str, str]:
    """Looked up per call: the draft is written in the language of the staff member."""
    return {
        "name": _("[Name]"),
        "email": _("[Email]"),
        "link": _("[Link]"),
        "iban": _("[IBAN]"),
        "number": _("[Number]"),
        "address": _("[Address]"),
        "phone": _("[Phone]"),
    }


# Only links with a query string go: tracking and order links carry ids and tokens there,
# while plain links to the shop's help pages are worth keeping in a public answer.
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\[\]\"'`]+", re.IGNORECASE)
_URL_TRAILER = ".,;:!?"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
# A number after the word that says what it is: "Bestellung 4711", "Kd.-Nr. 10023",
# "Rechnung RE-2024-0042". The word stays, the number goes; it needs a digit and 3 signs.
_LABELLED_NUMBER = re.compile(
    r"\b(?P<label>"
    r"(?:Kunden|Bestellungs|Bestell|Rechnungs|Auftrags|Sendungs|Vorgangs|Tracking|Serien"
    r"|Referenz|Ticket)"
    r"-?(?:nummer|nr\.?)"
    r"|Kd\.?-?Nr\.?|Re\.?-?Nr\.?|Bestellung|Rechnung|Auftrag|Vorgang|Ticket"
    r"|(?:Order|Invoice|Customer|Tracking)(?:[ \t]+(?:number|no\.?|id))?"
    r")" + canned.NUMBER_AFTER_LABEL,
    re.IGNORECASE,
)
_TICKET = re.compile(r"(?<![\w&])#\d{3,}\b")
_STREET_SUFFIXES = "straße|strasse|str\\.|gasse|allee|weg|damm|chaussee|ufer|pfad|steig"
# "Musterstraße 12", "Karl-Marx-Str. 3a", "Berliner Straße 5-7", with ", 12345 Ort" if given.
# Bare "Straße 5" and suffixes common in other words (-ring, -platz) are left to the reader.
_ADDRESS = re.compile(
    r"(?:\b(?=[A-ZÄÖÜ])[\w-]+?(?i:" + _STREET_SUFFIXES + r")"
    r"|\b[A-ZÄÖÜ][\w-]*[ ](?:Straße|Strasse|Str\.|Gasse|Allee|Weg|Damm|Chaussee|Ufer))"
    r"[ \t]*\d{1,4}(?!\d)(?:[ \t]?[a-zA-Z](?!\w))?(?:[ \t]*[-–/][ \t]*\d{1,4}(?!\d))?"
    # "Fußweg 5 Minuten", "Rückweg 3 Tage": a way, not an address.
    r"(?![ \t]*(?:Min|Std|Stunde|Tag|Woche|Monat|Jahr|km|Meter|Kilometer|Mal\b|Stück|Euro|€|%))"
    r"(?:,?[ \t]*\d{5}(?:[ \t]+[A-ZÄÖÜ][\w-]+)?)?"
)
# Starts like a phone number (+49, 0049, (030), 0170) and goes on in digit groups of two
# or more, each after a separator: "+49 (0)170 123 45 67", "030/1234567", "0170-1234567".
# Separators are required between groups, so matching stays linear on long digit runs.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d+|\(0\d*\)|0\d+)"
    r"(?:(?:[ \t]?[-/][ \t]?|[ \t]|[ \t]?\(0\)[ \t]?)\(?\d{2,}\)?)*(?!\w)"
)
_LONG_NUMBER = re.compile(r"(?<!\d)\d{5,}(?!\d)")  # order, invoice, customer numbers, zip codes


def redact(text: str, names: Iterable[str | None]) -> str:
    """The text with personal data replaced by placeholders such as "[Name]" and "[Email]".

    Replaced: links with a query string, email addresses, IBANs, numbers named as customer,
    order, invoice or tracking numbers, ticket numbers (#1042), German street addresses,
    phone numbers, any run of five or more digits, and each of `names` in full and by
    its parts of three letters or more (whole words, any case, also "Müller" as "Mueller").
    Short numbers ("3 Tage", "M4") and words that merely contain a name ("Route" for
    "Ute") stay. A reader still checks the result: no pattern knows every name.
    """
    placeholder = _placeholders()
    text = unicodedata.normalize("NFC", text)
    text = _URL.sub(lambda match: _redact_url(match.group(0), placeholder["link"]), text)
    text = _EMAIL.sub(placeholder["email"], text)
    text = _IBAN.sub(placeholder["iban"], text)
    text = _LABELLED_NUMBER.sub(
        lambda match: match.group("label") + match.group("separator") + placeholder["number"],
        text,
    )
    text = _TICKET.sub(placeholder["number"], text)
    text = _ADDRESS.sub(placeholder["address"], text)
    text = _PHONE.sub(lambda match: _redact_phone(match.group(0), placeholder["phone"]), text)
    text = _LONG_NUMBER.sub(placeholder["number"], text)
    pattern = names_pattern(names)
    if pattern is not None:
        text = pattern.sub(placeholder["name"], text)
    return text


def _redact_url(url: str, link: str) -> str:
    trailer = ""
    while url and url[-1] in _URL_TRAILER:  # the sentence's full stop is not the link's
        url, trailer = url[:-1], url[-1] + trailer
    return (link if "?" in url else url) + trailer


def _redact_phone(candidate: str, phone: str) -> str:
    digits = sum(char.isdigit() for char in candidate)
    # A phone number has 7 to 15 digits (E.164); longer runs are tracking or order numbers
    # and fall to the long-number rule.
    return phone if 7 <= digits <= 15 else candidate


def names_pattern(names: Iterable[str | None]) -> re.Pattern[str] | None:
    """Every name in full and by each of its parts (board.accounts.redaction), in any
    case and spelling: publishing removes them all, common words included."""
    terms: set[str] = set()
    for name in names:
        full = full_name(name)
        candidates = [full] if sum(char.isalpha() for char in full) >= 3 else []
        for candidate in candidates + name_parts(full):
            terms |= spellings(candidate)
    if not terms:
        return None
    # Longest first, so "Erika Mustermann" becomes one placeholder, not two.
    alternatives = "|".join(
        re.escape(term).replace(r"\ ", r"\s+") for term in sorted(terms, key=len, reverse=True)
    )
    # Whole words only, a possessive "s" included ("Erikas Paket"); placeholders stay.
    return re.compile(
        rf"(?<![\w\[])(?:{alternatives})(?:s|'s|’s)?(?![\w\]])", re.IGNORECASE | re.UNICODE
    )


# --- the draft ---------------------------------------------------------------------------

# A message that starts with a list, quote, heading, table or code block cannot follow
# "**Question:**" on the same line.
_BLOCK_START = re.compile(r"^(?:[-*+>#|]|\d+[.)]\s|```|~~~| {4}|\t)")


def question_and_answer(turns: Sequence[tuple[bool, str]]) -> str:
    """Markdown of (from_staff, body) turns: questions and answers, one side's run merged."""
    sections: list[tuple[bool, list[str]]] = []
    for from_staff, body in turns:
        body = body.strip()
        if not body:
            continue
        if sections and sections[-1][0] == from_staff:
            sections[-1][1].append(body)
        else:
            sections.append((from_staff, [body]))
    blocks = []
    for from_staff, bodies in sections:
        label = "**" + (_("Answer:") if from_staff else _("Question:")) + "**"
        text = "\n\n".join(bodies)
        blocks.append(f"{label}\n\n{text}" if _BLOCK_START.match(text) else f"{label} {text}")
    return "\n\n".join(blocks)


async def draft_for(database: Database, conversation: Record) -> tuple[str, str]:
    """The prefilled title and body: the subject and the public messages, redacted."""
    thread = await database.fetch_all(
        sa.select(messages.c.body, users.c.role, users.c.name)
        .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id))
        .where(messages.c.conversation_id == conversation.id, messages.c.internal.is_(False))
        .order_by(messages.c.id)
    )
    names = {conversation.guest_name}
    if conversation.customer_id is not None:
        names.add(
            await database.fetch_val(
                sa.select(users.c.name).where(users.c.id == conversation.customer_id)
            )
        )
    # Everyone on the customer's side; staff sign their answers in the forum anyway.
    names.update(row.name for row in thread if row.role not in STAFF_ROLES)
    body = question_and_answer([(row.role in STAFF_ROLES, row.body) for row in thread])
    # The title comes from the whole first message, redacted before it is cut: the stored
    # subject may end in half a phone number that no pattern recognises any more.
    first = next((row.body for row in thread if row.role not in STAFF_ROLES), None)
    title = subject_from(redact(first, names))[0] if first else redact(conversation.subject, names)
    return title, redact(body, names)


# --- queries -----------------------------------------------------------------------------


async def topic_title(database: Database, topic_id: int | None) -> str | None:
    if topic_id is None:
        return None
    return await database.fetch_val(sa.select(topics.c.title).where(topics.c.id == topic_id))


async def publish_as_topic(
    database: Database,
    conversation: Record,
    category_id: int,
    staff: CurrentUser,
    title: str,
    body: str,
    flood_seconds: int,
) -> int:
    """The topic, and the conversation pointing to it (its newest) with the history saying
    who published it: one transaction, so a topic never stands without its link."""
    async with write_transaction(database):
        topic_id = await forum_queries.insert_topic(
            database, category_id, staff, title, body, flood_seconds
        )
        await writing.link_topic(database, conversation, topic_id, staff.id)
    return topic_id


# --- the endpoint ------------------------------------------------------------------------


def can_publish(conversation: Record) -> bool:
    """Only a settled support request is an answer worth showing to everyone (staff only)."""
    return conversation.kind == "support" and conversation.status == "solved"


def ensure_publishable(conversation: Record) -> None:
    if not can_publish(conversation):
        raise HTTPException(409, _("Only solved conversations can be published."))


async def publish(request: Request) -> Response:
    user = require_staff(request)
    database = db(request)
    conversation = await inbox_queries.conversation_or_404(
        database, request.path_params["number"], user
    )
    ensure_publishable(conversation)
    if request.method == "GET":
        title, body = await draft_for(database, conversation)
        return await _render(request, conversation, title=title, body=body)
    form = await read_form(request)
    title, body = field(form, "title", TITLE_MAX), field(form, "body", BODY_MAX)
    category_text = field(form, "category", 12)
    categories = await forum_queries.categories_for_move(database)
    category_id = int(category_text) if category_text.isdigit() else None
    errors = {}
    if not title:
        errors["title"] = _("Please enter a title.")
    if not body:
        errors["body"] = _("Please write something.")
    if category_id not in {category.id for category in categories}:
        errors["category"] = _("Please choose a category.")
    if errors:
        return await _render(
            request,
            conversation,
            status_code=400,
            title=title,
            body=body,
            category_id=category_id,
            errors=errors,
            categories=categories,
        )
    topic_id = await publish_as_topic(
        database, conversation, category_id, user, title, body, settings_of(request).flood_seconds
    )
    return redirect(path_for(request, "topic", topic_id=topic_id))


async def _render(
    request: Request,
    conversation: Record,
    status_code: int = 200,
    categories: list[Record] | None = None,
    **form_state,
) -> Response:
    database = db(request)
    if categories is None:
        categories = await forum_queries.categories_for_move(database)
    return render(
        request,
        "staff/publish.html",
        status_code=status_code,
        conversation=conversation,
        categories=categories,
        published_title=await topic_title(database, conversation.forum_topic_id),
        **form_state,
    )


routes = [
    Route("/staff/t/{number:int}/publish", publish, methods=["GET", "POST"], name="publish"),
]
