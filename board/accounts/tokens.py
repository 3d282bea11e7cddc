"""One-time login codes and password reset links: issued with their mail, kept as hashes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import sqlalchemy as sa
from databases import Database

from board import mail, security
from board.accounts.queries import set_password
from board.db import login_tokens, users, utcnow, write_transaction

Record = Any
CODE, RESET = "code", "reset"  # login_tokens.purpose
CODE_LIFETIME = timedelta(minutes=10)
RESET_LIFETIME = timedelta(hours=1)
CODE_ATTEMPTS = 5  # wrong tries that void a code
MAIL_TEMPLATES = {CODE: "login_code", RESET: "password_reset"}


class CodeCheck(Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    SPENT = "spent"  # five wrong tries: only a new code helps
    NO_CODE = "no_code"  # none requested, or expired, used or replaced by a newer one


def code_hash(secret_key: str, user_id: int, code: str) -> str:
    """Keyed with the site's secret: a copy of the database alone cannot try all million codes."""
    return security.signed(secret_key, "login-code", f"{user_id}:{code}")


def reset_hash(token: str) -> str:
    # The token has 256 random bits: a plain hash is enough, nobody can guess through it.
    return hashlib.sha256(token.encode()).hexdigest()


async def active_user_by_email(db: Database, email: str) -> Record | None:
    return await db.fetch_one(
        sa.select(users).where(users.c.email == email.lower(), users.c.is_active.is_(True))
    )


async def _void_unused(
    db: Database, user_id: int, purposes: tuple[str, ...], now: datetime
) -> None:
    await db.execute(
        login_tokens.update()
        .where(
            login_tokens.c.user_id == user_id,
            login_tokens.c.purpose.in_(purposes),
            login_tokens.c.used_at.is_(None),
            login_tokens.c.expires_at > now,
        )
        .values(expires_at=now)
    )


async def issue(
    db: Database,
    purpose: str,
    user: Record,
    secret_hash: str,
    params: dict[str, Any],
    locale: str | None,
) -> None:
    """Stores a new code or link and queues its mail; the older unused ones stop working."""
    now = utcnow()
    lifetime = CODE_LIFETIME if purpose == CODE else RESET_LIFETIME
    async with write_transaction(db):
        await _void_unused(db, user.id, (purpose,), now)
        await db.execute(
            login_tokens.insert().values(
                user_id=user.id,
                purpose=purpose,
                secret_hash=secret_hash,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        # No to_name: the mail shows nothing of the account but the code or link itself.
        await mail.queue(
            db, MAIL_TEMPLATES[purpose], user.email, params, locale=locale, user_id=user.id
        )


async def use_code(db: Database, user_id: int, secret_hash: str) -> CodeCheck:
    """Checks a typed code against the account's live one and uses it up when it matches."""
    now = utcnow()
    # The write lock up front: two requests with the same code cannot both log in, and no
    # wrong try goes uncounted.
    async with write_transaction(db):
        token = await db.fetch_one(
            sa.select(login_tokens.c.id, login_tokens.c.secret_hash, login_tokens.c.attempts)
            .where(
                login_tokens.c.user_id == user_id,
                login_tokens.c.purpose == CODE,
                login_tokens.c.used_at.is_(None),
                login_tokens.c.expires_at > now,
            )
            .order_by(login_tokens.c.created_at.desc())
            .limit(1)
        )
        if token is None:
            return CodeCheck.NO_CODE
        if token.attempts >= CODE_ATTEMPTS:
            return CodeCheck.SPENT
        this_token = login_tokens.update().where(login_tokens.c.id == token.id)
        if hmac.compare_digest(token.secret_hash, secret_hash):
            await db.execute(this_token.values(used_at=now))
            return CodeCheck.ACCEPTED
        await db.execute(this_token.values(attempts=login_tokens.c.attempts + 1))
        return CodeCheck.SPENT if token.attempts + 1 >= CODE_ATTEMPTS else CodeCheck.WRONG


async def reset_link_owner(db: Database, secret_hash: str) -> Record | None:
    """The live reset link with this hash and its active account: (token_id, user_id)."""
    return await db.fetch_one(
        sa.select(login_tokens.c.id.label("token_id"), login_tokens.c.user_id)
        .select_from(login_tokens.join(users, users.c.id == login_tokens.c.user_id))
        .where(
            login_tokens.c.secret_hash == secret_hash,
            login_tokens.c.purpose == RESET,
            login_tokens.c.used_at.is_(None),
            login_tokens.c.expires_at > utcnow(),
            users.c.is_active.is_(True),
        )
    )


async def reset_password(db: Database, secret_hash: str, password_hash: str) -> int | None:
    """Uses the link: the new password, no other codes or links, no sessions left.

    Returns the account's id, or None when the link no longer works.
    """
    now = utcnow()
    async with write_transaction(db):
        link = await reset_link_owner(db, secret_hash)
        if link is None:
            return None
        await db.execute(
            login_tokens.update().where(login_tokens.c.id == link.token_id).values(used_at=now)
        )
        await _void_unused(db, link.user_id, (CODE, RESET), now)
        await set_password(db, link.user_id, password_hash)  # also ends must_change_password
        # Whoever knew the old password may hold a session: every device logs in anew.
        await security.end_other_sessions(db, link.user_id, None)
    return link.user_id
