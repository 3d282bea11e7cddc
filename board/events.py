"""Live updates: events written with the change they announce, streamed to open pages.

A change that open pages should learn about calls `record` inside its write
transaction, so the event is as durable as the change. Each server process runs one
`Hub`: it reads the rows added since it last looked and hands each to the streams open in
this process whose viewer it concerns. It looks when a request of its own process
committed something (`wake`), when the broadcaster (BOARD_BROADCAST_URL: redis://… or
postgres://…) says another process did, and otherwise once a second, so several workers
on one machine agree through the database even without a broker.

A browser that reconnects sends the last id it saw (Last-Event-ID) and gets the rows
after it from the database. Rows are kept for a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from databases import Database

from board.db import live_events, utcnow

log = logging.getLogger("board.events")

POLL_SECONDS = 1.0
KEEP = timedelta(days=1)
CHANNEL = "board-events"
SHARED_RESULTS = 2000  # results of `Hub.shared` remembered, newest kept
QUEUE_SIZE = 100  # events waiting for one slow stream before it is told to reload


async def record(
    db: Database,
    kind: str,
    data: dict[str, Any] | None = None,
    *,
    to_user: int | None = None,
    to_customers: bool = False,
    to_staff: bool = False,
    to_guest_of: int | None = None,
    conversation_id: int | None = None,
) -> None:
    """Writes one event for exactly one audience: a user, every customer, every staff
    member, or the guest of a conversation (`to_guest_of` is its id)."""
    audiences = {
        "user": to_user is not None,
        "customers": to_customers,
        "staff": to_staff,
        "guest": to_guest_of is not None,
    }
    chosen = [name for name, wanted in audiences.items() if wanted]
    if len(chosen) != 1:
        raise ValueError(f"an event needs exactly one audience, not {chosen}")
    await db.execute(
        live_events.insert().values(
            audience=chosen[0],
            user_id=to_user,
            conversation_id=to_guest_of if to_guest_of is not None else conversation_id,
            kind=kind,
            data=json.dumps(data or {}),
            created_at=utcnow(),
        )
    )


@dataclass(frozen=True)
class Event:
    id: int
    audience: str
    user_id: int | None
    conversation_id: int | None
    kind: str
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row) -> Event:
        return cls(
            id=row.id,
            audience=row.audience,
            user_id=row.user_id,
            conversation_id=row.conversation_id,
            kind=row.kind,
            data=json.loads(row.data),
        )


@dataclass(frozen=True)
class Listener:
    """Whose stream: a user (customer or staff), the guest of one conversation, or the
    holder of a mail link, who hears only of the customer's events about that one
    conversation (`only_conversation`)."""

    user_id: int | None = None
    is_staff: bool = False
    guest_conversation: int | None = None
    only_conversation: int | None = None

    def concerned(self, event: Event) -> bool:
        """The audience check; what the event names is checked again before it is sent."""
        if self.only_conversation is not None and event.conversation_id != self.only_conversation:
            return False
        if event.audience == "user":
            return self.user_id is not None and event.user_id == self.user_id
        if event.audience == "staff":
            return self.is_staff
        if event.audience == "customers":
            return self.user_id is not None and not self.is_staff
        if event.audience == "guest":
            return self.guest_conversation is not None and (
                event.conversation_id == self.guest_conversation
            )
        return False


def audience_clause(listener: Listener) -> sa.ColumnElement[bool]:
    """The SQL form of `Listener.concerned`, for replaying from the database."""
    if listener.guest_conversation is not None:
        return sa.and_(
            live_events.c.audience == "guest",
            live_events.c.conversation_id == listener.guest_conversation,
        )
    mine = sa.and_(live_events.c.audience == "user", live_events.c.user_id == listener.user_id)
    if listener.only_conversation is not None:
        return sa.and_(mine, live_events.c.conversation_id == listener.only_conversation)
    group = "staff" if listener.is_staff else "customers"
    return sa.or_(mine, live_events.c.audience == group)


async def events_after(db: Database, after: int, listener: Listener | None = None) -> list[Event]:
    statement = sa.select(live_events).where(live_events.c.id > after).order_by(live_events.c.id)
    if listener is not None:
        statement = statement.where(audience_clause(listener))
    return [Event.from_row(row) for row in await db.fetch_all(statement.limit(1000))]


async def last_id(db: Database) -> int:
    return await db.fetch_val(sa.select(sa.func.coalesce(sa.func.max(live_events.c.id), 0)))


async def oldest_id(db: Database) -> int | None:
    return await db.fetch_val(sa.select(sa.func.min(live_events.c.id)))


async def forget_old(db: Database, now=None) -> int:
    """Deletes events older than a day (the maintenance task)."""
    cutoff = (now or utcnow()) - KEEP
    result = await db.execute(live_events.delete().where(live_events.c.created_at < cutoff))
    return result or 0


@dataclass(eq=False)
class Stream:
    listener: Listener
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )


class Hub:
    """This process's reader of new events and its open streams."""

    def __init__(
        self, db: Database, broadcast_url: str | None = None, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.db = db
        self.broadcast_url = broadcast_url
        self.poll_seconds = poll_seconds
        self.streams: set[Stream] = set()
        self.seen = 0
        self.wake = asyncio.Event()
        self._broadcast = None
        self._shared: OrderedDict[tuple, asyncio.Task] = OrderedDict()

    async def shared(self, key: tuple, make: Callable[[], Awaitable[Any]]) -> Any:
        """What `make` returns, computed once for every stream that asks for the same key
        while it is remembered: a thousand open tabs reading one event cost one query."""
        task = self._shared.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            task.add_done_callback(lambda done: self._forget_failed(key, done))
            self._shared[key] = task
            while len(self._shared) > SHARED_RESULTS:
                self._shared.popitem(last=False)
        # Shielded: a stream that closes while waiting does not cancel it for the others.
        return await asyncio.shield(task)

    @contextlib.asynccontextmanager
    async def stream(self, listener: Listener) -> AsyncIterator[Stream]:
        """An open page's place in the hub; leaving the block frees it."""
        opened = Stream(listener)
        self.streams.add(opened)
        try:
            yield opened
        finally:
            self.streams.discard(opened)

    def _forget_failed(self, key: tuple, done: asyncio.Task) -> None:
        if done.cancelled() or done.exception() is not None:
            self._shared.pop(key, None)

    def deliver(self, events: Iterable[Event]) -> None:
        for event in events:
            self.seen = max(self.seen, event.id)
            for stream in list(self.streams):
                if stream.listener.concerned(event):
                    try:
                        stream.queue.put_nowait(event)
                    except asyncio.QueueFull:
                        # A stream that reads nothing (a stalled client) does not hold
                        # memory: it is ended, and the browser reconnects and replays.
                        self.streams.discard(stream)
                        stream.queue.get_nowait()  # room for the end mark in the full queue
                        stream.queue.put_nowait(None)

    async def read_new(self) -> int:
        """Delivers the rows added since the last look; returns how many."""
        if not self.streams:
            self.seen = max(self.seen, await last_id(self.db))
            return 0
        found = await events_after(self.db, self.seen)
        self.deliver(found)
        return len(found)

    async def announce(self) -> None:
        """Tells the other processes that this one committed events (with a broker)."""
        self.wake.set()
        if self._broadcast is not None:
            try:
                await self._broadcast.publish(channel=CHANNEL, message="new")
            except Exception:
                log.warning("broadcast failed; other workers poll the database", exc_info=True)

    async def run_forever(self) -> None:
        while True:
            try:
                self.seen = await last_id(self.db)
                break
            except Exception:
                log.exception("live events: the database does not answer; trying again")
                await asyncio.sleep(self.poll_seconds)
        listening = asyncio.create_task(self._listen()) if self.broadcast_url else None
        try:
            while True:
                try:
                    while await self.read_new() == 1000:
                        pass
                except Exception:
                    log.exception("reading live events failed")
                self.wake.clear()
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
                # arrives as the event is set (a POST just before shutdown), and the hub
                # would keep the shutdown waiting forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self.wake.wait()
        finally:
            if listening is not None:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening

    async def _listen(self) -> None:
        """Wakes the hub when another process says it wrote events. A broker that is down
        or goes away costs only speed: the hub still polls, and this tries again."""
        from broadcaster import Broadcast

        while True:
            broadcast = Broadcast(self.broadcast_url)
            try:
                await broadcast.connect()
                self._broadcast = broadcast
                async with broadcast.subscribe(channel=CHANNEL) as subscriber:
                    self.wake.set()  # whatever was said while this was not listening
                    async for _message in subscriber:
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Cancelled at shutdown while the broker goes away too (Ctrl-C reaches
                # both), the client's cleanup raises its connection error in place of the
                # CancelledError; taken for an outage, it kept shutdown waiting 10 s.
                if asyncio.current_task().cancelling():
                    raise asyncio.CancelledError from None
                log.warning("broker %s unavailable; polling the database", self.broadcast_url)
            finally:
                self._broadcast = None
                with contextlib.suppress(Exception):
                    await broadcast.disconnect()
            await asyncio.sleep(5)
