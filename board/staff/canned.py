"""Canned replies: `#shortcut` in an answer becomes the saved text, with or without scripts."""

from __future__ import annotations

import re
from collections.abc import Mapping

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
