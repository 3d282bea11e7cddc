"""The demo's German text pools, read from the TOML files in board/demo/texts/.

The sentences are data, not code: whoever rewords a sentence or adds a product edits a
TOML file and touches no Python. Each file is read once per process and shared by every
caller, so it comes back read-only: lists as tuples, tables as mapping proxies.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

TEXTS = Path(__file__).with_name("texts")


@cache
def read_pools(name: str) -> Mapping[str, Any]:
    """The file texts/`name`.toml (names, shop, grammar, themes, forum, conversations)."""
    with (TEXTS / f"{name}.toml").open("rb") as file:
        return _frozen(tomllib.load(file))


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    return value


@dataclass(frozen=True)
class Theme:
    """What customers ask about one subject or one title, and how staff and others answer.

    A subject's theme holds every title and sentence of the subject (the pinned FAQs draw
    from it); each of its `topics` is the theme of one title, its own sentences with the
    subject-wide ones that fit any title, so a forum topic's posts and a conversation's
    messages answer the question their title asks.
    """

    slug: str  # the default category it belongs to
    weight: int
    titles: tuple[str, ...]
    openings: tuple[str, ...]
    details: tuple[str, ...]
    questions: tuple[str, ...]
    answers: tuple[str, ...]  # staff sentences
    tips: tuple[str, ...]  # other customers' sentences
    customer_blocks: tuple[str, ...] = ()  # markdown blocks: lists, tables, code
    staff_blocks: tuple[str, ...] = ()
    topics: tuple[Theme, ...] = ()  # one theme per title


# Where a title's own sentences go relative to the subject-wide ones: staff open with the
# subject's general sentences, customers add theirs after their own.
_SUBJECT_FIRST = frozenset({"answers"})
_POOLS = ("details", "questions", "answers", "tips", "customer_blocks", "staff_blocks")


def _with_general(pool: str, own: tuple[str, ...], general: tuple[str, ...]) -> tuple[str, ...]:
    return general + own if pool in _SUBJECT_FIRST else own + general


def _subject(fields: Mapping[str, Any]) -> Theme:
    """A subject's theme from its table: the [[key.topics]] titles, then the general pools."""
    general = {pool: fields.get(pool, ()) for pool in _POOLS}
    common = {"slug": fields["slug"], "weight": fields["weight"]}
    topics = tuple(
        Theme(
            **common,
            titles=(topic["title"],),
            openings=topic["openings"],
            **{pool: _with_general(pool, topic.get(pool, ()), general[pool]) for pool in _POOLS},
        )
        for topic in fields["topics"]
    )
    everything = {  # a sentence two titles share comes once
        pool: tuple(dict.fromkeys(s for topic in fields["topics"] for s in topic.get(pool, ())))
        for pool in _POOLS
    }
    return Theme(
        **common,
        titles=tuple(topic["title"] for topic in fields["topics"]),
        openings=tuple(dict.fromkeys(s for topic in fields["topics"] for s in topic["openings"])),
        **{pool: _with_general(pool, everything[pool], general[pool]) for pool in _POOLS},
        topics=topics,
    )


@cache
def themes() -> dict[str, Theme]:
    """Every subject's theme by its key ("versand", "technik", …), in the file's order.

    The order is part of the content: the demo draws themes by weight from this list and
    titles in the order of their subject, so reordering the file changes what a seed writes.
    """
    return {key: _subject(fields) for key, fields in read_pools("themes").items()}
