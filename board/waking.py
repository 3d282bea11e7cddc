"""Background loops that sleep until a request wakes them or their pause ends: the outbox,
the webhook deliveries, the absence handover."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


async def sleep_until_woken(wake: asyncio.Event, seconds: float) -> None:
    # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
    # event is set (a POST just before shutdown), and the loop would run on.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


async def drain_forever(
    one_round: Callable[[], Awaitable[int]],
    batch: int,
    wake: asyncio.Event,
    poll_seconds: float,
    log: logging.Logger,
) -> None:
    """Runs `one_round` (which handles up to `batch` rows) until a round finds less than a
    batch, then sleeps until woken or `poll_seconds` pass. A failed round is logged and the
    loop goes on."""
    while True:
        try:
            while await one_round() == batch:
                pass
        except Exception:
            log.exception("round failed")
        wake.clear()
        await sleep_until_woken(wake, poll_seconds)
