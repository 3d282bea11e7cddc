"""First start and maintenance: migrations, the first admin, default content, counters."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from board.config import Settings
from board.db import (
    cache_versions,
    categories,
    migrate,
    posts,
    sync_engine,
    topics,
    users,
    utcnow,
)
from board.markup import render_markdown
from board.security import hash_password

DEFAULT_CATEGORIES = (
    {
        "slug": "ankuendigungen",
        "name": "Ankündigungen",
        "description": "Neuigkeiten aus dem Shop: Öffnungszeiten, Versandfristen, neue Funktionen.",
        "staff_topics_only": True,
    },
    {
        "slug": "shop-und-kundenbereich",
        "name": "Shop- und Kundenbereich",
        "description": "Fragen zum Kundenkonto, zum Postfach und zur Bedienung des Shops.",
    },
    {
        "slug": "bestellung-und-versand",
        "name": "Bestellung & Versand",
        "description": "Lieferzeiten, Sendungsverfolgung, Rücksendungen und Zahlung.",
    },
    {
        "slug": "technik-und-fragen",
        "name": "Technik & Fragen",
        "description": "Produkte, Einrichtung und alles Technische.",
    },
)

WELCOME_TITLE = "Willkommen im Support-Forum"
# One line per paragraph or list item: single newlines are line breaks in posts.
WELCOME_BODY = "\n".join(
    [
        "Schön, dass Sie da sind! Hier finden Sie Antworten auf häufige Fragen rund um "
        "**Bestellung, Versand und unsere Produkte**.",
        "",
        "So geht es am schnellsten:",
        "",
        "1. **Suchen Sie zuerst** – viele Fragen wurden hier schon beantwortet.",
        "2. Für Fragen zu *Ihrer* Bestellung schreiben Sie uns über Ihr **Postfach**: "
        "Ihre Nachricht bleibt dort als eigener Vorgang mit Ticketnummer.",
        "3. Im Forum helfen sich Kundinnen und Kunden auch gegenseitig.",
        "",
        "Bitte nennen Sie im Forum keine Bestell- oder Rechnungsnummern.",
        "",
        "Ihr Support-Team",
    ]
)


@dataclass(frozen=True)
class CreatedStaff:
    email: str
    password: str | None  # set when it was generated and must be shown once


def initialize(settings: Settings) -> CreatedStaff | None:
    """Migrates, then on an empty database creates the admin and the default content."""
    migrate(settings)
    engine = sync_engine(settings)
    try:
        with engine.begin() as connection:
            admin = ensure_admin(connection, settings)
            has_categories = connection.execute(sa.select(sa.func.count()).select_from(categories))
            if has_categories.scalar_one() == 0:
                admin_id = connection.execute(
                    sa.select(users.c.id).where(users.c.role == "admin").order_by(users.c.id)
                ).scalar_one()
                seed_default_content(connection, admin_id)
    finally:
        engine.dispose()
    return admin


def ensure_admin(connection: sa.Connection, settings: Settings) -> CreatedStaff | None:
    exists = connection.execute(sa.select(users.c.id).where(users.c.role == "admin")).first()
    if exists:
        return None
    email = (settings.admin_email or "admin@localhost").lower()
    password = settings.admin_password
    created = create_staff(
        connection, email, "Administrator", admin=True, password=password, title="Inhaber"
    )
    return CreatedStaff(email=email, password=None if password else created.password)


def create_staff(
    connection: sa.Connection,
    email: str,
    name: str,
    admin: bool = False,
    password: str | None = None,
    title: str = "Support",
) -> CreatedStaff:
    """A staff account; without a password one is generated, to be changed at first login."""
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    connection.execute(
        users.insert().values(
            email=email.lower(),
            name=name,
            title=title,
            role="admin" if admin else "staff",
            password_hash=hash_password(password),
            must_change_password=generated,
            created_at=utcnow(),
        )
    )
    return CreatedStaff(email=email.lower(), password=password)


def seed_default_content(connection: sa.Connection, admin_id: int) -> None:
    now = utcnow()
    for position, category in enumerate(DEFAULT_CATEGORIES):
        connection.execute(categories.insert().values(position=position, **category))
    category_id = connection.execute(
        sa.select(categories.c.id).where(categories.c.slug == "ankuendigungen")
    ).scalar_one()
    topic_id = connection.execute(
        topics.insert()
        .values(
            category_id=category_id,
            title=WELCOME_TITLE,
            author_id=admin_id,
            created_at=now,
            last_post_at=now,
            pinned=True,
        )
        .returning(topics.c.id)
    ).scalar_one()
    connection.execute(
        posts.insert().values(
            topic_id=topic_id,
            author_id=admin_id,
            body=WELCOME_BODY,
            body_html=render_markdown(WELCOME_BODY),
            created_at=now,
        )
    )
    recount(connection)


def recount(connection: sa.Connection) -> None:
    """Rebuilds every derived counter and "last post" pointer from the posts themselves.

    The web app keeps these up to date incrementally; this is the bulk path for imports
    and the demo, and the reference the tests compare the incremental counters against.
    """
    statements = (
        """
        UPDATE topics SET
          post_count = (SELECT count(*) FROM posts
                        WHERE posts.topic_id = topics.id AND posts.deleted_at IS NULL),
          first_post_id = (SELECT min(id) FROM posts WHERE posts.topic_id = topics.id),
          last_post_id = (SELECT max(id) FROM posts
                          WHERE posts.topic_id = topics.id AND posts.deleted_at IS NULL)
        """,
        """
        UPDATE topics SET
          last_post_at = coalesce(
            (SELECT created_at FROM posts WHERE posts.id = topics.last_post_id), created_at),
          last_poster_id = coalesce(
            (SELECT author_id FROM posts WHERE posts.id = topics.last_post_id), author_id)
        """,
        """
        UPDATE categories SET
          topic_count = (SELECT count(*) FROM topics
                         WHERE topics.category_id = categories.id AND topics.deleted_at IS NULL),
          post_count = (SELECT coalesce(sum(post_count), 0) FROM topics
                        WHERE topics.category_id = categories.id AND topics.deleted_at IS NULL),
          last_post_id = (SELECT max(last_post_id) FROM topics
                          WHERE topics.category_id = categories.id AND topics.deleted_at IS NULL)
        """,
        """
        UPDATE users SET
          post_count = (SELECT count(*) FROM posts
                        WHERE posts.author_id = users.id AND posts.deleted_at IS NULL)
        """,
    )
    for statement in statements:
        connection.execute(sa.text(statement))
    # Cached guest pages of a running server show the old counters: let them go.
    connection.execute(
        cache_versions.update()
        .where(cache_versions.c.name == "forum")
        .values(version=cache_versions.c.version + 1)
    )
