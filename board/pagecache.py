"""Whole pages for guests, rendered once per forum change instead of once per request.

Most visitors of a support forum are guests reading before they write, and a topic page
costs ~10 ms of template work. Guests all see the same page but for their CSRF token, so
the cache keeps the HTML with a placeholder where the token goes. Every change to public
forum content bumps the `forum` row of `cache_versions` in its own transaction; a cached
page of an older version is rendered again. The version check is one primary-key read,
so several workers stay exact without talking to each other.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from databases import Database

from board.db import cache_versions, fetch_value
from board.security import csrf_token

if TYPE_CHECKING:  # types only: the services that bump the version import no Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Same length as a token (64 hex digits), so Content-Length stays right after the swap.
PLACEHOLDER = b"@csrf-token-placeholder@".ljust(64, b"@")
CACHED_PREFIXES = ("/c/", "/t/", "/u/")
MAX_ENTRIES = 2000


async def bump_forum_version(db: Database) -> None:
    """Call inside the write transaction of any change guests can see in the forum."""
    await db.execute(
        cache_versions.update()
        .where(cache_versions.c.name == "forum")
        .values(version=cache_versions.c.version + 1)
    )


async def forum_version(db: Database) -> int:
    version = await fetch_value(
        db, sa.select(cache_versions.c.version).where(cache_versions.c.name == "forum")
    )
    return version or 0


@dataclass(frozen=True)
class CachedPage:
    version: int
    start: Message
    body: bytes


class GuestPageCache:
    def __init__(self, app: ASGIApp, max_entries: int = MAX_ENTRIES) -> None:
        self.app = app
        self.max_entries = max_entries
        self.pages: OrderedDict[tuple, CachedPage] = OrderedDict()

    def _cacheable(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        state = scope.get("state", {})
        if state.get("user") is not None or not state.get("csrf_seed"):
            return False
        path = scope["path"]
        query = scope["query_string"]
        return (path == "/" or path.startswith(CACHED_PREFIXES)) and (
            not query or query.startswith(b"page=")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._cacheable(scope):
            await self.app(scope, receive, send)
            return
        app_state = scope["app"].state
        version = await forum_version(app_state.db)
        token = csrf_token(app_state.settings.secret_key, scope["state"]["csrf_seed"]).encode()
        key = (scope["path"], scope["query_string"], scope["state"]["locale"])
        page = self.pages.get(key)
        if page is not None and page.version == version:
            self.pages.move_to_end(key)
            await send(page.start)
            await send(
                {"type": "http.response.body", "body": page.body.replace(PLACEHOLDER, token)}
            )
            return

        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        headers = dict(start.get("headers", []))
        if start.get("status") == 200 and headers.get(b"content-type", b"").startswith(
            b"text/html"
        ):
            body = b"".join(chunks).replace(token, PLACEHOLDER)
            self.pages[key] = CachedPage(version, start, body)
            if len(self.pages) > self.max_entries:
                self.pages.popitem(last=False)
