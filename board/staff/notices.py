"""The notice board: the admin's instructions for staff (markdown, on the staff home and
above the queue) and the optional public banner on the forum and the contact page."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from databases import Database

from board.db import Query, notices, utcnow, write_transaction
from board.errors import Invalid
from board.i18n import gettext as _
from board.markup import render_markdown
from board.pagecache import bump_forum_version

Record = Any
STAFF_NOTICE_MAX = 5_000
BANNER_MAX = 200

NOTICE = Query(
    sa.select(notices.c.body, notices.c.body_html, notices.c.updated_at).where(
        notices.c.name == sa.bindparam("name")
    )
)


async def staff_notice(db: Database) -> Record | None:
    """The instructions for staff, None when there are none."""
    row = await NOTICE.row(db, name="staff")
    return row if row is not None and row.body else None


async def public_banner(db: Database) -> str:
    """The banner line for visitors; empty: none. One primary-key read."""
    return await NOTICE.value(db, name="banner") or ""


async def save(db: Database, admin_id: int, staff_text: str, banner: str) -> None:
    """Both notices at once (the caller checked that `admin_id` is an administrator).

    The banner is part of every cached guest page: its change bumps the forum version in
    the same transaction, so no worker serves the old banner after the commit.
    """
    errors: dict[str, str] = {}
    if len(staff_text) > STAFF_NOTICE_MAX:
        errors["staff_notice"] = _(
            "The text may have at most %(count)s characters.", count=STAFF_NOTICE_MAX
        )
    if len(banner) > BANNER_MAX:
        errors["banner"] = _("The banner may have at most %(count)s characters.", count=BANNER_MAX)
    elif "\n" in banner or "\r" in banner:
        errors["banner"] = _("The banner is one line.")
    if errors:
        raise Invalid(errors)
    now = utcnow()
    async with write_transaction(db):
        old_banner = await public_banner(db)
        await db.execute(
            notices.update()
            .where(notices.c.name == "staff")
            .values(
                body=staff_text,
                body_html=render_markdown(staff_text) if staff_text else "",
                updated_by=admin_id,
                updated_at=now,
            )
        )
        await db.execute(
            notices.update()
            .where(notices.c.name == "banner")
            .values(body=banner, body_html="", updated_by=admin_id, updated_at=now)
        )
        if banner != old_banner:
            await bump_forum_version(db)
