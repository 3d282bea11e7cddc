"""Markdown rendering for posts and messages: markdown-it-py, raw HTML off, safe links."""

from __future__ import annotations

from markdown_it import MarkdownIt

# "js-default" is CommonMark plus tables and strikethrough with raw HTML switched off;
# markdown-it-py's own default preset would let <script> through.
_markdown = MarkdownIt("js-default", {"linkify": False, "typographer": False})


def _link_open(renderer, tokens, index, options, env):
    # User content must not pass search ranking on, nor be trusted as the site's own.
    tokens[index].attrSet("rel", "nofollow ugc")
    return renderer.renderToken(tokens, index, options, env)


_markdown.add_render_rule("link_open", _link_open)


def render_markdown(text: str) -> str:
    """HTML for a user's markdown; stored beside the source so pages never render twice."""
    return _markdown.render(text)
