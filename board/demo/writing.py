"""Message bodies from the text pools: pieces of markdown rendered once, joined, filled in.

`Writer` holds what the forum's posts and the conversations' messages are both made of:
a random choice of sentences, a greeting, blocks, and the placeholder values of one topic
or conversation. board.demo.forum and board.demo.conversations each add their own kinds
of message on top.
"""

from __future__ import annotations

import random
from functools import cache

from board.demo.pools import read_pools
from board.markup import render_markdown


class Pieces:
    """Markdown pieces rendered once each; a body is its pieces joined, then filled in.

    A post is paragraphs of sentences plus at most one block (list, table, code) between
    them. Rendering a paragraph equals wrapping its sentences' inline HTML in <p>, and
    rendering blank-line-separated blocks equals concatenating their HTML, so no post
    needs rendering of its own. Placeholders such as {product} pass through markdown
    untouched; the values filled in later contain no markdown or HTML syntax.
    """

    def __init__(self) -> None:
        self._blocks: dict[str, str] = {}
        self._inline: dict[str, str] = {}

    def block(self, text: str) -> tuple[str, str]:
        html = self._blocks.get(text)
        if html is None:
            html = self._blocks[text] = render_markdown(text)
        return text, html

    def paragraph(self, sentences: list[str]) -> tuple[str, str]:
        parts = []
        for sentence in sentences:
            inline = self._inline.get(sentence)
            if inline is None:
                html = render_markdown(sentence)
                if not (html.startswith("<p>") and html.endswith("</p>\n")):
                    raise ValueError(f"not a plain sentence: {sentence!r}")
                inline = self._inline[sentence] = html[3:-5]
            parts.append(inline)
        return " ".join(sentences), "<p>" + " ".join(parts) + "</p>\n"


class Values(dict):
    """The placeholders' values; a text that names another placeholder is a mistake."""

    def __missing__(self, key: str) -> str:
        raise KeyError(f"demo text uses an unknown placeholder: {key}")


@cache
def _lower_after_comma() -> frozenset[str]:
    return frozenset(read_pools("grammar")["lower_after_comma"])


def _after_comma(sentence: str) -> str:
    first, space, rest = sentence.partition(" ")
    return first.lower() + space + rest if first in _lower_after_comma() else sentence


class Writer:
    """Composes bodies as lists of (markdown, html) pieces; subclasses add the kinds."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pieces = Pieces()

    def _maybe(self, probability: float) -> bool:
        return self.rng.random() < probability

    def _some(self, pool: tuple[str, ...], low: int, high: int) -> list[str]:
        """A few sentences of a pool, in the pool's order (the pools are written to read on)."""
        count = min(len(pool), self.rng.randint(low, high))
        return [pool[i] for i in sorted(self.rng.sample(range(len(pool)), count))]

    def _greeted(self, greeting: str | None, sentences: list[str]) -> list[tuple[str, str]]:
        """The greeting as its own paragraph; after a comma the text goes on in lower case."""
        if greeting is None:
            return [self.pieces.paragraph(sentences)]
        if greeting.endswith(",") and sentences:
            sentences = [_after_comma(sentences[0]), *sentences[1:]]
        return [self.pieces.paragraph([greeting]), self.pieces.paragraph(sentences)]

    def body(self, parts: list[tuple[str, str]], values: Values) -> tuple[str, str]:
        markdown = "\n\n".join(text for text, _html in parts)
        html = "".join(html for _text, html in parts)
        return markdown.format_map(values), html.format_map(values)


def placeholder_values(rng: random.Random) -> Values:
    """What one topic or conversation is about: products, carrier, amounts, versions."""
    shop = read_pools("shop")
    product, product2 = rng.sample(shop["products"], 2)
    carrier = rng.choices(tuple(shop["carriers"]), tuple(shop["carriers"].values()))[0]
    digits = "".join(rng.choice("0123456789") for _ in range(12))
    tracking = {"DHL": "00340434" + digits, "DPD": "01" + digits, "GLS": digits[:11]}.get(
        carrier, "H100" + digits
    )
    cents = rng.choice(("90", "99", "00", "50", "95"))
    return Values(
        product=product,
        product2=product2,
        carrier=carrier,
        tracking=tracking,
        days=str(rng.randint(2, 12)),
        amount=f"{rng.randint(12, 349)},{cents} €",
        payment=rng.choice(shop["payments"]),
        version=f"{rng.randint(2, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
    )
