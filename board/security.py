"""Passwords (argon2 via passlib), server-side sessions, CSRF tokens and rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from anyio.to_thread import run_sync as run_in_threadpool
from databases import Database
from passlib.context import CryptContext

from board.db import Query, rate_events, sessions, users, utcnow

STAFF_ROLES = ("staff", "admin")  # users.role values that work in the staff area

SESSION_COOKIE = "board_session"
ANON_COOKIE = "board_anon"  # lets guests carry a CSRF token before they log in
SESSION_LIFETIME = timedelta(days=30)
SESSION_TOUCH_INTERVAL = timedelta(minutes=5)

password_context = CryptContext(schemes=["argon2"], deprecated="auto")

# Compared against when the account does not exist, so an unknown login takes as long
# as a wrong password and the timing reveals nothing.
_DUMMY_HASH = password_context.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return password_context.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        password_context.verify(password, _DUMMY_HASH)
        return False
    return password_context.verify(password, password_hash)


# argon2 takes ~150 ms of CPU by design; off the event loop, other requests keep flowing.
async def hash_password_async(password: str) -> str:
    return await run_in_threadpool(hash_password, password)


async def verify_password_async(password: str, password_hash: str | None) -> bool:
    return await run_in_threadpool(verify_password, password, password_hash)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    email: str
    role: str
    customer_number: int | None
    title: str | None
    locale: str | None
    must_change_password: bool
    session_hash: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def create_session(db: Database, user_id: int, ip: str | None, user_agent: str | None) -> str:
    """A fresh random id for every login: a session id known before login is worthless."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await db.execute(
        sessions.insert().values(
            id_hash=_digest(token),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
            ip=ip,
            user_agent=(user_agent or "")[:255],
        )
    )
    return token


SESSION_USER = Query(
    sa.select(
        users.c.id,
        users.c.name,
        users.c.email,
        users.c.role,
        users.c.customer_number,
        users.c.title,
        users.c.locale,
        users.c.must_change_password,
        sessions.c.last_seen_at,
    )
    .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
    .where(
        sessions.c.id_hash == sa.bindparam("id_hash"),
        sessions.c.expires_at > sa.bindparam("now"),
        users.c.is_active.is_(True),
    )
)


async def user_for_session(db: Database, token: str) -> CurrentUser | None:
    id_hash = _digest(token)
    row = await SESSION_USER.row(db, id_hash=id_hash, now=utcnow())
    if row is None:
        return None
    now = utcnow()
    if now - row.last_seen_at > SESSION_TOUCH_INTERVAL:
        # Sliding expiry, written at most every few minutes rather than on every request.
        await db.execute(
            sessions.update()
            .where(sessions.c.id_hash == id_hash)
            .values(last_seen_at=now, expires_at=now + SESSION_LIFETIME)
        )
    return CurrentUser(
        id=row.id,
        name=row.name,
        email=row.email,
        role=row.role,
        customer_number=row.customer_number,
        title=row.title,
        locale=row.locale,
        must_change_password=row.must_change_password,
        session_hash=id_hash,
    )


async def end_session(db: Database, token: str) -> None:
    await db.execute(sessions.delete().where(sessions.c.id_hash == _digest(token)))


async def end_other_sessions(db: Database, user_id: int, keep_hash: str | None) -> None:
    query = sessions.delete().where(sessions.c.user_id == user_id)
    if keep_hash is not None:
        query = query.where(sessions.c.id_hash != keep_hash)
    await db.execute(query)


# --- CSRF --------------------------------------------------------------------------------


def csrf_token(secret_key: str, seed: str) -> str:
    """Bound to the visitor's session (or anonymous cookie) and signed with the secret."""
    return hmac.new(secret_key.encode(), b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret_key: str, seed: str | None, submitted: str | None) -> bool:
    if not seed or not submitted:
        return False
    return hmac.compare_digest(csrf_token(secret_key, seed), submitted)


def signed(secret_key: str, purpose: str, value: str | int) -> str:
    """A token that only this site can make for `value`: links that carry their own proof.

    Guest links are made this way from the conversation id, so the doorbell can build the
    link again for each mail while the database keeps only its hash; unsubscribe links
    name the user.
    """
    message = f"{purpose}:{value}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_valid(secret_key: str, purpose: str, value: str | int, token: str) -> bool:
    return hmac.compare_digest(signed(secret_key, purpose, value), token)


def new_anon_id() -> str:
    return secrets.token_urlsafe(24)


# --- rate limits -------------------------------------------------------------------------


async def recent_events(db: Database, bucket: str, key: str, window: timedelta) -> int:
    return await db.fetch_val(
        sa.select(sa.func.count())
        .select_from(rate_events)
        .where(
            rate_events.c.bucket == bucket,
            rate_events.c.key == key,
            rate_events.c.created_at > utcnow() - window,
        )
    )


async def limit_reached(db: Database, bucket: str, key: str, limit: int, window: timedelta) -> bool:
    """Whether `limit` events of this bucket and key fall within `window`; 0 is no limit."""
    if limit <= 0:
        return False
    return await recent_events(db, bucket, key, window) >= limit


async def oldest_recent_event(
    db: Database, bucket: str, key: str, window: timedelta
) -> datetime | None:
    return await db.fetch_val(
        sa.select(sa.func.min(rate_events.c.created_at)).where(
            rate_events.c.bucket == bucket,
            rate_events.c.key == key,
            rate_events.c.created_at > utcnow() - window,
        )
    )


async def record_event(db: Database, bucket: str, key: str) -> None:
    await db.execute(rate_events.insert().values(bucket=bucket, key=key, created_at=utcnow()))


async def clear_events(db: Database, bucket: str, key: str) -> None:
    await db.execute(
        rate_events.delete().where(rate_events.c.bucket == bucket, rate_events.c.key == key)
    )


async def prune_events(db: Database, older_than: timedelta) -> None:
    await db.execute(rate_events.delete().where(rate_events.c.created_at < utcnow() - older_than))
