"""Finding a customer's name in texts, to erase it where it is their name and nowhere else.

A name's parts are often words too: a customer called "Paket Rechnung Danke" must not turn
"Danke für die Rechnung! Das Paket mit Bestellung 10001" into "[…] für die […]! …". So a
name counts where it stands as a name:

- in any text about the customer: the full name; two or more of its parts side by side
  ("Erika Mustermann" of "Erika Maria Mustermann", "Mustermann Erika"); one capitalised
  part after a salutation ("Frau Mustermann", "Hallo Erika", "Dear Erika");
- in the customer's own texts (their messages and posts, the titles of their topics) also
  a single capitalised part, unless it is a common German or English word
  (common_words.txt): "Zoraida" goes, "Danke" stays.

The email address and the customer number are replaced wherever they stand.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path

REDACTED = "[…]"
COMMON_WORDS_FILE = Path(__file__).with_name("common_words.txt")
SALUTATIONS = ("Frau", "Herr", "Herrn", "Hallo", "Hi", "Hey", "Liebe", "Lieber", "Dear")
SALUTATIONS += ("Mr", "Mrs", "Ms", "Moin", "Servus")
# Spellings without umlauts, as people type them ("Mueller" for "Müller").
_TRANSLITERATIONS = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"))
_TRANSLITERATIONS += (("Ü", "Ue"), ("ß", "ss"))
# Words that are part of names but also of every other sentence: "von der Heide".
_PARTICLES = frozenset(
    "von vom van der den dem des zur zum del della dos das die und bin ibn ten ter".split()
)


@cache
def common_words() -> frozenset[str]:
    """Read once from the file shipped in the package (scripts/common-words.py)."""
    lines = COMMON_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def spellings(word: str) -> set[str]:
    """The word as written and without umlauts."""
    spelled = word
    for letter, replacement in _TRANSLITERATIONS:
        spelled = spelled.replace(letter, replacement)
    return {word, spelled}


def full_name(name: str | None) -> str:
    return " ".join(unicodedata.normalize("NFC", name or "").split())


def name_parts(name: str) -> list[str]:
    """The parts of a name that can stand for it: three letters or more, no particle;
    a double name also by its halves ("Müller-Lüdenscheidt")."""
    words = [w.strip(".,;:()'\"") for w in full_name(name).split()]
    parts = words + [half for word in words if "-" in word for half in word.split("-")]
    return [
        part
        for part in dict.fromkeys(parts)
        if sum(char.isalpha() for char in part) >= 3 and part.lower() not in _PARTICLES
    ]


def _alternation(words) -> str:
    written = {spelling for word in words for spelling in spellings(word)}
    return "|".join(re.escape(s) for s in sorted(written, key=len, reverse=True))


_END = r"(?:s|'s|’s)?(?![\w\]])"  # a possessive "s" ("Erikas Paket"); placeholders stay
_START = r"(?<![\w\[])"


def name_redactor(name: str, own_text: bool) -> Callable[[str], str]:
    """Replaces the name where it stands as a name (see the module); `own_text` for the
    customer's own texts, where a single uncommon part counts too."""
    full = full_name(name)
    parts = name_parts(full)
    if not parts:
        return lambda text: text
    capitalised = [part for part in parts if part[:1].isupper()]
    patterns: list[tuple[re.Pattern[str], str]] = []
    if len(full.split()) > 1:
        whole = _alternation([full]).replace(r"\ ", r"\s+")
        patterns.append((re.compile(rf"{_START}(?:{whole}){_END}", re.IGNORECASE), REDACTED))
    if capitalised:
        part = _alternation(capitalised)
        patterns.append((re.compile(rf"{_START}(?:{part})(?:[ \t]+(?:{part}))+{_END}"), REDACTED))
        salutation = "|".join(SALUTATIONS)
        patterns.append(
            (
                re.compile(rf"(?<![\w\[])((?:{salutation})\.?[ \t]+)(?:{part}){_END}"),
                rf"\g<1>{REDACTED}",
            )
        )
        uncommon = [p for p in capitalised if p.lower() not in common_words()]
        if own_text and uncommon:
            patterns.append((re.compile(rf"{_START}(?:{_alternation(uncommon)}){_END}"), REDACTED))

    def redact(text: str) -> str:
        for pattern, replacement in patterns:
            text = pattern.sub(replacement, text)
        return text

    return redact


def redactor(
    name: str, email: str, customer_number: int | None, own_text: bool
) -> Callable[[str], str]:
    """Replaces the customer's email, customer number and name in a text. The email
    first, so that its local part does not leave the domain behind; the number only where
    no digit touches it ("100012" is another number)."""
    email_pattern = re.compile(re.escape(email), re.IGNORECASE)
    number_pattern = (
        re.compile(rf"(?<!\d){customer_number}(?!\d)") if customer_number is not None else None
    )
    by_name = name_redactor(name, own_text)

    def redact(text: str) -> str:
        text = email_pattern.sub(REDACTED, text)
        if number_pattern is not None:
            text = number_pattern.sub(REDACTED, text)
        return by_name(text)

    return redact
