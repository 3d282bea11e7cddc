"""Markdown rendering for posts and messages: markdown-it-py, raw HTML off, known link schemes."""

from __future__ import annotations

import regex
from markdown_it import MarkdownIt

# "js-default" is CommonMark plus tables and strikethrough with raw HTML switched off;
# markdown-it-py's own default preset would let <script> through.
# `breaks`: a single newline is a line break, as people expect from a forum ("Viele Grüße
# ⏎ Anna"), not a space as in CommonMark.
_markdown = MarkdownIt("js-default", {"linkify": False, "typographer": False, "breaks": True})


def _link_open(renderer, tokens, index, options, env):
    # User content must not pass search ranking on, nor be trusted as the site's own.
    tokens[index].attrSet("rel", "nofollow ugc")
    return renderer.renderToken(tokens, index, options, env)


_markdown.add_render_rule("link_open", _link_open)

# Links and images may point at web pages and mail addresses, or stay on this site (no
# scheme). markdown-it's own check refuses javascript:, vbscript:, file: and data: but lets
# data:image/png through, and any scheme it has not heard of; this allows what is known.
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = regex.compile(r"([a-z][a-z0-9+.\-]*):")
_TAB_OR_NEWLINE = regex.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


def link_allowed(url: str) -> bool:
    """Whether a link or image address (entities decoded, as markdown-it hands it over) is
    safe: its scheme read as a browser reads it, which drops tabs and newlines anywhere and
    control characters and spaces at either end."""
    address = _TAB_OR_NEWLINE.sub("", url).strip(_C0_AND_SPACE).lower()
    scheme = _SCHEME.match(address)
    return scheme is None or scheme.group(1) in ALLOWED_SCHEMES


_markdown.validateLink = link_allowed


def render_markdown(text: str) -> str:
    """HTML for a user's markdown; stored beside the source so pages never render twice."""
    return _markdown.render(text)


SUBJECT_LENGTH = 100
_WHITESPACE = regex.compile(r"\s+")
_GRAPHEME = regex.compile(r"\X")


def plain_text(markdown_text: str) -> str:
    """The text a reader sees: markup, link targets and image addresses removed."""
    pieces: list[str] = []
    for block in _markdown.parse(markdown_text):
        if block.type == "inline" and block.children:
            for token in block.children:
                if token.type in ("text", "code_inline"):
                    pieces.append(token.content)
                elif token.type in ("softbreak", "hardbreak"):
                    pieces.append(" ")
                elif token.type == "image":
                    pieces.append(token.content)  # the alt text
        elif block.type in ("fence", "code_block"):
            pieces.append(block.content)
        if block.nesting == -1 or block.type in ("fence", "code_block", "hr"):
            pieces.append(" ")  # a block ends: words of two paragraphs must not fuse
    return _WHITESPACE.sub(" ", "".join(pieces)).strip()


_SPACES = regex.compile(r"[^\S\n]+")


def _inline_text(block) -> str:
    pieces = []
    for token in block.children or ():
        if token.type in ("text", "code_inline"):
            pieces.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
        elif token.type == "image":
            pieces.append(token.content)
    return "".join(pieces)


def searchable_text(markdown_text: str) -> str:
    """The text a reader sees, for the search index and its snippets: each block (paragraph,
    heading, list item, table row, code line) on a line of its own, so that a snippet can
    begin where one begins; a table row reads "Size: M · Price: 12 €", each cell after its
    column's heading, rather than every cell of the table run together."""
    lines: list[str] = []
    line: list[str] = []
    heading: list[str] = []
    row: list[str] = []
    in_head = in_cell = False

    def end_line() -> None:
        if line:
            lines.append("".join(line))
            line.clear()

    for block in _markdown.parse(markdown_text):
        kind = block.type
        if kind == "thead_open":
            in_head = True
        elif kind == "thead_close":
            in_head = False
        elif kind == "tr_open":
            row = []
        elif kind in ("th_open", "td_open"):
            row.append("")
            in_cell = True
        elif kind in ("th_close", "td_close"):
            in_cell = False
        elif kind == "inline" and in_cell:
            row[-1] = _SPACES.sub(" ", _inline_text(block)).strip()
        elif kind == "inline":
            line.append(_inline_text(block))
        elif kind == "tr_close":
            if in_head:
                heading = row
            else:
                cells = [
                    f"{heading[index]}: {cell}" if index < len(heading) and heading[index] else cell
                    for index, cell in enumerate(row)
                    if cell
                ]
                lines.append(" · ".join(cells))
        elif kind in ("fence", "code_block"):
            end_line()
            lines.extend(block.content.splitlines())
        if block.nesting == -1 or kind in ("hr",):
            end_line()
    end_line()
    cleaned = (_SPACES.sub(" ", text).strip() for text in lines)
    return "\n".join(text for text in cleaned if text)


def subject_from(markdown_text: str, length: int = SUBJECT_LENGTH) -> tuple[str, bool]:
    """The first `length` user-perceived characters of the plain text, and whether it was cut.

    Counts grapheme clusters (`\\X`), so an emoji with joiners or a letter with a combining
    accent is one character and is never split.
    """
    text = plain_text(markdown_text)
    clusters = _GRAPHEME.findall(text)
    if len(clusters) <= length:
        return text, False
    return "".join(clusters[:length]).rstrip(), True
