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
    """What customers ask about one subject, and how staff and other customers answer."""

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


@cache
def themes() -> dict[str, Theme]:
    """Every theme by its key ("versand", "technik", …), in the file's order.

    The order is part of the content: the demo draws themes by weight from this list, so
    reordering the file changes what a seed writes.
    """
    return {key: Theme(**fields) for key, fields in read_pools("themes").items()}
