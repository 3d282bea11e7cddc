"""Languages: every visible string has its German translation; dates follow the locale."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from board import i18n

ROOT = Path(__file__).resolve().parent.parent
PO_FILE = ROOT / "board/translations/de/LC_MESSAGES/messages.po"


def extracted_messages() -> set[str]:
    method_map = [
        ("board/**.py", "python"),
        ("templates/**.html", "jinja2"),
        ("templates/**.txt", "jinja2"),
    ]
    jinja = {"extensions": "jinja2.ext.i18n"}
    options = {"templates/**.html": jinja, "templates/**.txt": jinja}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2)}
    found = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_visible_string_has_a_german_translation():
    with PO_FILE.open("rb") as po_file:
        catalog = read_po(po_file, locale="de")
    missing = []
    for message_id in sorted(extracted_messages()):
        entry = catalog.get(message_id)
        translations = entry.string if entry else None
        if isinstance(translations, tuple):
            translated = all(translations)
        else:
            translated = bool(translations)
        if not translated or (entry and entry.fuzzy):
            missing.append(message_id)
    assert missing == [], f"untranslated: {missing}"
    assert len(extracted_messages()) > 100


def test_placeholders_survive_translation():
    import re

    with PO_FILE.open("rb") as po_file:
        catalog = read_po(po_file, locale="de")
    for entry in catalog:
        if not entry.id:
            continue
        source = entry.id if isinstance(entry.id, str) else entry.id[0]
        targets = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = set(re.findall(r"%\((\w+)\)s", source))
        for target in targets:
            assert set(re.findall(r"%\((\w+)\)s", target)) == wanted, entry.id


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("de", "08.09.2005, 10:45"), ("en", "Sep 8, 2005, 10:45\u202fAM")],
)
def test_post_times_read_like_the_locale(locale, expected):
    i18n.current_locale.set(locale)
    i18n.current_timezone.set("Europe/Berlin")
    text = i18n.format_datetime(datetime(2005, 9, 8, 8, 45))  # stored as UTC
    assert text.replace(" AM", "\u202fAM") == expected


@pytest.mark.parametrize(
    ("locale", "hours", "expected"),
    [
        ("de", 0.2, "12 Min."),
        ("de", 0.0, "0 Min."),
        ("de", 0.999, "1,0 Std."),  # 60 minutes are an hour
        ("de", 3.46, "3,5 Std."),
        ("de", None, "–"),
        ("en", 0.75, "45 min"),
        ("en", 26.0, "26.0 hr"),
    ],
)
def test_durations_under_an_hour_read_in_minutes(locale, hours, expected):
    i18n.current_locale.set(locale)
    assert i18n.format_hours(hours) == expected


@pytest.mark.parametrize(
    ("user", "header", "default", "expected"),
    [
        (None, "", "de", "de"),
        (None, "", "en", "en"),
        (None, "en-US,en;q=0.9", "de", "en"),
        (None, "fr-FR,de;q=0.5,en;q=0.4", "en", "de"),
        (None, "fr", "de", "de"),
        ("de", "en", "en", "de"),
        (None, "en;q=garbage", "de", "de"),
    ],
)
def test_locale_negotiation(user, header, default, expected):
    assert i18n.negotiate_locale(user, header, default) == expected
