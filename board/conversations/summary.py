"""The summary columns of a conversation, derived from its messages in one place.

Lists sort by them, the unread mark compares them, the queue waits on them and the
statistics count them. Every writer (a reply, an import, an announcement, the demo)
takes them from `summary_columns`, so they cannot drift apart. Internal notes are
part of the history but change nothing a customer can see: not the activity time, not
the count, not the newest message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Said:
    """One message as the summary sees it."""

    id: int
    author_id: int | None
    from_staff: bool
    internal: bool
    at: datetime


def summary_columns(history: Sequence[Said], status: str, assignee_id: int | None) -> dict:
    """The derived columns from all messages, given the `status` the conversation is in.

    Computed from the whole history rather than step by step: a conversation holds few
    messages, and an import may bring a mail older than what the conversation holds.
    """
    history = sorted(history, key=lambda said: (said.at, said.id))
    public = [said for said in history if not said.internal]
    newest = public[-1]
    answers = [said for said in public if said.from_staff]
    from_customer = [said for said in public if not said.from_staff]
    last_answer = max((index for index, said in enumerate(public) if said.from_staff), default=-1)
    waiting = [said.at for said in public[last_answer + 1 :] if not said.from_staff]
    return {
        "created_at": history[0].at,
        "last_message_at": newest.at,
        "last_customer_message_at": from_customer[-1].at if from_customer else None,
        "first_response_at": answers[0].at if answers else None,
        "message_count": len(public),
        "last_public_message_id": newest.id,
        "last_public_author_id": newest.author_id,
        # An open conversation always has one (the queue sorts by it): since the first
        # customer message nobody has answered, or since the shop reopened it.
        "waiting_since": (waiting[0] if waiting else newest.at) if status == "open" else None,
        # The first staff member to answer looks after it, unless somebody already does.
        "assignee_id": assignee_id
        if assignee_id is not None
        else next((said.author_id for said in answers), None),
    }


def opening_columns(at: datetime) -> dict:
    """What a conversation's row needs before its first message exists (NOT NULL)."""
    return {"created_at": at, "last_message_at": at}
