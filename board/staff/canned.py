"""Canned replies: `#shortcut` in an answer becomes the saved text, with or without scripts,
its placeholders ({vorname}, {name}, {ticket}, {agent}, {order}) filled for the conversation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# A shortcut starts with a letter, so `#1042` (a ticket number) never expands.
SHORTCUT_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# `#versand` on its own: not inside a word, a URL fragment (`/seite#versand`) or `&#...;`.
_IN_TEXT = re.compile(r"(?<![\w#/&])#([A-Za-z][A-Za-z0-9_-]{0,39})(?![\w-])")


def normalize_shortcut(text: str) -> str:
    return text.strip().removeprefix("#").lower()


def is_valid_shortcut(shortcut: str) -> bool:
    return SHORTCUT_PATTERN.fullmatch(shortcut) is not None


def expand(body: str, replies: Mapping[str, str]) -> str:
    """Replaces every `#shortcut` that names a canned reply; other hashes stay as typed."""

    def replace(match: re.Match) -> str:
        return replies.get(match.group(1).lower(), match.group(0))

    return _IN_TEXT.sub(replace, body)


# --- placeholders --------------------------------------------------------------------------

# Filled in when the reply is put into an answer: in the page's canned replies for the
# reply box (static/js/staff.js inserts them as they are) and on the server for `#shortcut`
# sent without scripts. {ticket} is "#1042", as the ticket number is shown everywhere.
PLACEHOLDERS = ("vorname", "first_name", "name", "ticket", "agent", "order")
_PLACEHOLDER = re.compile(r"\{([^{}\s]{1,40})\}")
# {order} waits for the staff member when no order number is known: an answer is not sent
# while it is still in the text (board/staff/routes.py).
UNFILLED_ORDER = "{order}"
# What follows the word that says what a number is ("Bestellung 4711", "Bestellnummer:
# A-2024-77", "order no. 4711"): a separator, then the number, with a digit and at least
# three signs. Publishing (publish.py) redacts such numbers after its wider list of words.
NUMBER_AFTER_LABEL = (
    r"(?P<separator>[ \t]*(?:[:#]|Nr\.?|Nummer|number|no\.?)?[ \t]*)"
    r"(?P<number>(?=[\w/-]*\d)[A-Za-z0-9][\w/-]{2,})"
)
_ORDER_NUMBER = re.compile(
    r"\b(?:Bestell(?:ungs)?-?(?:nummer|nr\.?)|Bestellung|Auftrags-?(?:nummer|nr\.?)|Auftrag"
    r"|Order(?:[ \t]+(?:number|no\.?|id))?)" + NUMBER_AFTER_LABEL,
    re.IGNORECASE,
)


def unknown_placeholders(body: str) -> list[str]:
    """The `{words}` of a canned reply that are no placeholder, in order, once each."""
    unknown: list[str] = []
    for match in _PLACEHOLDER.finditer(body):
        name = match.group(1)
        if name not in PLACEHOLDERS and name not in unknown:
            unknown.append(name)
    return unknown


def order_number_in(texts: Iterable[str]) -> str | None:
    """The first order number named in the texts (give the newest first), if any.

    Until a conversation has an order number field of its own, the customer's words are
    where it is: "meine Bestellung 4711"."""
    for text in texts:
        match = _ORDER_NUMBER.search(text)
        if match:
            return match.group("number")
    return None


def placeholder_values(
    person_name: str | None, ticket_number: int, agent_name: str, order_number: str | None
) -> dict[str, str]:
    """What each placeholder becomes in one conversation, answered by one staff member."""
    name = (person_name or "").strip()
    first_name = name.split()[0] if name else ""
    return {
        "vorname": first_name,
        "first_name": first_name,
        "name": name,
        "ticket": f"#{ticket_number}",
        "agent": agent_name,
        "order": order_number or UNFILLED_ORDER,
    }


def fill(body: str, values: Mapping[str, str]) -> str:
    """The canned reply with its placeholders filled; anything else in braces stays."""

    def replace(match: re.Match) -> str:
        return values.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(replace, body)
