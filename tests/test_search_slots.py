"""Searches at once are bounded per worker (board/search/routes.py): a search that finds
every slot taken waits a moment, then gets a clear 503 with Retry-After, never a pile-up
of searches that each hold their memory."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from board.search import routes as search_routes
from tests.conftest import index_now
from tests.test_forum import open_topic


@pytest.fixture
def quick_slots(monkeypatch):
    monkeypatch.setattr(search_routes, "SLOT_WAIT", 0.2)


def take_every_slot(app, client) -> None:
    """What searches that run right now hold: every slot of this worker."""

    async def take() -> None:
        slots = app.state._state.get("search_slots")
        if slots is None:
            slots = app.state.search_slots = asyncio.Semaphore(search_routes.SEARCH_SLOTS)
        for _ in range(search_routes.SEARCH_SLOTS):
            await slots.acquire()

    client.portal.call(take)


def give_back_every_slot(app, client) -> None:
    async def give() -> None:
        for _ in range(search_routes.SEARCH_SLOTS):
            app.state.search_slots.release()

    client.portal.call(give)


def test_a_search_with_every_slot_taken_gets_503_and_retry_after(app, client, people, quick_slots):
    erika = people.customer()
    open_topic(erika, "Rücksendung eines Pakets", "Wie schicke ich ein Paket zurück?")
    index_now(app, client)
    take_every_slot(app, client)
    busy = erika.get("/search", params={"q": "Paket"})
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "2"
    assert "Gerade suchen sehr viele" in busy.text
    draft = "Ich möchte mein Paket zurückschicken, wie geht das bitte?"
    suggested = erika.get("/search/suggest", params={"q": draft})
    assert suggested.status_code == 503 and suggested.headers["retry-after"] == "2"
    assert suggested.json()["topics"] == []
    give_back_every_slot(app, client)
    found = erika.get("/search", params={"q": "Paket"})
    assert found.status_code == 200 and "Rücksendung" in found.text


def test_concurrent_searches_all_answer_within_the_slots(app, client, people):
    erika = people.customer()
    open_topic(erika, "Rücksendung eines Pakets", "Wie schicke ich ein Paket zurück?")
    index_now(app, client)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: erika.get("/search", params={"q": "Paket"}).status_code, range(16))
        )
    # Each search is quick here: they queue for the slots and all get their answer.
    assert statuses == [200] * 16
    assert app.state.search_slots._value == search_routes.SEARCH_SLOTS  # every slot back
