"""Rendered HTML fragments kept in memory, keyed by everything that goes into them.

A post's block (author, date, text) looks the same to every reader in a language: it
is rendered once and reused until something it shows changes. The key holds the values
the fragment is made of (ids, edit times, the author's name and counts, the language,
the time zone), so an edited post, a renamed author or another language is simply
another key: nothing has to be invalidated, and nothing stale or foreign can be served.
What differs per viewer (edit links, forms with their CSRF token, unread marks) is
never part of a fragment.

Bounded: at most MAX_ENTRIES fragments and MAX_BYTES of text per process, the least
recently used leave first (docs/operations.md lists every cache and its bound).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from markupsafe import Markup

MAX_ENTRIES = 20_000
MAX_BYTES = 8 * 1024 * 1024  # characters of fragments and of the texts in their keys


class FragmentCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Markup] = OrderedDict()
        self.size = 0
        self.hits = 0
        self.misses = 0

    def get_or_render(self, key: Hashable, render: Callable[[], str]) -> Markup:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        fragment = Markup(render())
        if len(fragment) > self.max_bytes // 100:
            return fragment  # one huge post must not push out a hundred others
        self._entries[key] = fragment
        self.size += _weight(key, fragment)
        while len(self._entries) > self.max_entries or self.size > self.max_bytes:
            dropped_key, dropped = self._entries.popitem(last=False)
            self.size -= _weight(dropped_key, dropped)
        return fragment

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)


def _weight(key: Hashable, fragment: str) -> int:
    """The characters an entry holds: its fragment, and the texts its key keeps alive (a
    post's HTML is part of its key; a topic page's posts key on their rows)."""
    return len(fragment) + _key_texts(key)


def _key_texts(key: Hashable) -> int:
    if isinstance(key, str):
        return len(key)
    if isinstance(key, tuple):
        return sum(_key_texts(part) for part in key)
    return 0
