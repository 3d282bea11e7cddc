"""The demo forum: customers, staff, topics and posts at any size, in German.

`add_forum` plans everything in memory (who writes when, in which topic), then inserts raw
rows in bulk and lets `recount` derive the counters. Post bodies are assembled from
pieces of markdown that are rendered once each (board.demo.writing), so a hundred
thousand posts cost string joins, not a hundred thousand markdown renders.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate

import sqlalchemy as sa

from board.db import categories, posts, topics, users, utcnow
from board.demo.people import DEMO_PASSWORD, DEMO_STAFF, email_address
from board.demo.pools import Theme, read_pools, themes
from board.demo.writing import Values, Writer, placeholder_values
from board.progress import Progress
from board.security import hash_password
from board.setup import recount


class ForumWriter(Writer):
    """Composes post bodies for one topic's theme, as lists of (markdown, html) pieces."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.pools = read_pools("forum")

    def question(self, theme: Theme) -> list[tuple[str, str]]:
        rng = self.rng
        greeting = rng.choice(self.pools["customer_greetings"]) if self._maybe(0.6) else None
        opening = [rng.choice(theme.openings), *self._some(theme.details, 0, 2)]
        parts = self._greeted(greeting, opening)
        if theme.customer_blocks and self._maybe(0.25):
            parts.append(self.pieces.block(rng.choice(theme.customer_blocks)))
        parts.append(self.pieces.paragraph(self._some(theme.questions, 1, 2)))
        if self._maybe(0.6):
            parts.append(self.pieces.block(rng.choice(self.pools["customer_signoffs"])))
        return parts

    def staff_answer(self, theme: Theme, first: bool, to_all: bool) -> list[tuple[str, str]]:
        rng = self.rng
        greeting = (
            "Hallo zusammen,"
            if to_all and self._maybe(0.5)
            else rng.choice(self.pools["staff_greetings"])
        )
        if first:
            sentences = self._some(theme.answers, 1, 3)
        else:
            sentences = [rng.choice(self.pools["staff_followups"])] if self._maybe(0.6) else []
            sentences += self._some(theme.answers, 1 - len(sentences), 2 - len(sentences))
        parts = self._greeted(greeting, sentences)
        if theme.staff_blocks and self._maybe(0.35 if first else 0.15):
            parts.append(self.pieces.block(rng.choice(theme.staff_blocks)))
        if self._maybe(0.7):
            parts.append(self.pieces.paragraph([rng.choice(self.pools["staff_closers"])]))
        parts.append(self.pieces.block(rng.choice(self.pools["staff_signoffs"])))
        return parts

    def author_followup(self, theme: Theme, resolved: bool) -> tuple[list[tuple[str, str]], bool]:
        """The topic's author answers; returns the pieces and whether the matter is settled."""
        rng = self.rng
        if resolved:
            sentences = [rng.choice(self.pools["author_later"])]
        elif self._maybe(0.55):
            sentences, resolved = [rng.choice(self.pools["author_thanks"])], True
        else:
            sentences = [
                rng.choice(self.pools["author_still_stuck"]),
                *self._some(theme.details, 0, 1),
            ]
            if self._maybe(0.5):
                sentences.append(rng.choice(theme.questions))
        parts = [self.pieces.paragraph(sentences)]
        if self._maybe(0.3):
            parts.append(self.pieces.block(rng.choice(self.pools["peer_signoffs"])))
        return parts, resolved

    def peer_reply(self, theme: Theme) -> list[tuple[str, str]]:
        rng, parts = self.rng, []
        if self._maybe(0.15):
            # Quoting what staff said earlier, as forum users do.
            parts.append(self.pieces.block("> " + rng.choice(theme.answers)))
            parts.append(self.pieces.paragraph([rng.choice(self.pools["peer_agree"])]))
        elif self._maybe(0.7):
            parts.append(self.pieces.paragraph(self._some(theme.tips, 1, 2)))
        else:
            parts.append(self.pieces.paragraph([rng.choice(self.pools["peer_generic"])]))
        if self._maybe(0.25):
            parts.append(self.pieces.block(rng.choice(self.pools["peer_signoffs"])))
        return parts

    def announcement_reply(self, staff: bool) -> list[tuple[str, str]]:
        pool = self.pools["announcement_answers"] if staff else self.pools["announcement_replies"]
        return [self.pieces.paragraph([self.rng.choice(pool)])]

    def lock_note(self) -> list[tuple[str, str]]:
        return [self.pieces.block(self.rng.choice(self.pools["lock_notes"]))]


# --- planning ----------------------------------------------------------------------------

DAY = 86_400.0
SPAN_DAYS = 730  # the demo forum has been running for about two years
VIP_SHARE = 0.03  # customers staff marked as VIP: their requests go first in the queue
MAX_REPLIES = 500
SOLVED_PREFIX = "[Gelöst] "
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class _Topic:
    kind: str  # "question", "faq" or "announcement"
    theme: Theme | None
    category_id: int
    title: str
    author_id: int
    created: float  # seconds after the demo's start
    values: Values
    pinned: bool = False
    locked: bool = False
    replies: int = 0
    id: int = 0
    body: str = ""  # fixed first post (faq, announcement)
    times: list[float] = field(default_factory=list)
    authors: list[int] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # "author", "staff", "peer", "lock"
    resolved: bool = False  # the author has said thanks; later posts of theirs are add-ons


def _unique_title(
    rng: random.Random, template: str, values: Values, taken: set[str]
) -> tuple[str, Values]:
    """A title not in `taken` (then added to it), and the values its topic is about.

    The title as written first; if taken and it has placeholders, with other values; then
    with a detail after it (title_details in forum.toml); after that, an order number.
    """
    own = set(_PLACEHOLDER.findall(template))
    details = [
        detail
        for detail in read_pools("forum")["title_details"]
        if not own & set(_PLACEHOLDER.findall(detail))
    ]

    def candidates():
        yield template, values
        for _ in range(20 if own else 0):
            yield template, placeholder_values(rng)
        for detail in details:  # in the file's order: the most telling first
            for round_ in range(30):
                yield f"{template} {detail}", values if round_ == 0 else placeholder_values(rng)

    for candidate, candidate_values in candidates():
        title = candidate.format_map(candidate_values)
        if title not in taken:
            taken.add(title)
            return title, candidate_values
    while True:
        title = f"{template.format_map(values)} (Bestellung {rng.randint(2_000_000, 2_999_999)})"
        if title not in taken:
            taken.add(title)
            return title, values


def _split_replies(rng: random.Random, weights: list[float], total: int) -> list[int]:
    """`total` replies over topics in proportion to skewed weights, none above MAX_REPLIES."""
    weight_sum = sum(weights) or 1.0
    counts = [min(MAX_REPLIES, int(total * w / weight_sum)) for w in weights]
    open_topics = [i for i, count in enumerate(counts) if count < MAX_REPLIES]
    left = total - sum(counts)
    cumulative = list(accumulate(weights[i] for i in open_topics))
    while left > 0 and open_topics:
        for i in rng.choices(open_topics, cum_weights=cumulative, k=left):
            if counts[i] < MAX_REPLIES and left > 0:
                counts[i] += 1
                left -= 1
        open_topics = [i for i in open_topics if counts[i] < MAX_REPLIES]
        cumulative = list(accumulate(weights[i] for i in open_topics))
    if left:
        raise ValueError(f"too many posts: at most {MAX_REPLIES + 1} per topic")
    return counts


def _reply_gaps(rng: random.Random, replies: int, available: float) -> list[float]:
    """Seconds between posts: the first answer within hours, long threads busier."""
    mean = 6 * 3600.0 if replies >= 30 else 20 * 3600.0
    gaps = [rng.expovariate(1 / (4 * 3600.0)) + 600.0]
    gaps += [rng.expovariate(1 / mean) + 120.0 for _ in range(replies - 1)]
    total = sum(gaps)
    if total > available:
        gaps = [gap * available / total for gap in gaps]
    return gaps


# --- the command's part ------------------------------------------------------------------


def add_forum(
    connection: sa.Connection, seed: int, customer_count: int, topic_count: int, total: int
) -> dict:
    """Adds customers, the demo staff (once), topics and `total` posts; returns a summary.

    The same seed on the same database writes the same content; a later run continues
    after the ids, customer numbers and titles that are there.
    """
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(days=SPAN_DAYS)
    horizon = SPAN_DAYS * DAY - 3600.0  # topics start until an hour ago, replies run later
    password_hash = hash_password(DEMO_PASSWORD)

    def next_id(column: sa.Column) -> int:
        return (connection.execute(sa.select(sa.func.max(column))).scalar() or 0) + 1

    user_id = next_id(users.c.id)
    # Same seed and same database, same content; a second run writes new people, not twins.
    rng = random.Random(f"{seed}:{user_id}")
    names, forum_pools, themes_by_key = read_pools("names"), read_pools("forum"), themes()
    taken = set(connection.execute(sa.select(users.c.email)).scalars())

    # Staff: the demo team once; later runs reuse it.
    staff_rows, staff_ids, first_names = [], [], {}
    existing = dict(
        connection.execute(
            sa.select(users.c.email, users.c.id).where(
                users.c.email.in_([email for _name, email in DEMO_STAFF])
            )
        ).all()
    )
    for name, email in DEMO_STAFF:
        if email in existing:
            staff_ids.append(existing[email])
        else:
            staff_rows.append(
                {
                    "id": user_id,
                    "customer_number": None,
                    "email": email,
                    "name": name,
                    "title": "Support",
                    "role": "staff",
                    "password_hash": password_hash,
                    "created_at": start - timedelta(days=30),
                    "vip": False,
                }
            )
            taken.add(email)
            staff_ids.append(user_id)
            user_id += 1
        first_names[staff_ids[-1]] = name.split()[0]
    staff_weights = list(accumulate(0.6 if i == 0 else 1.0 for i in range(len(staff_ids))))

    # Customers: ids and numbers continue; created_at follows from their first post below.
    number = max(
        connection.execute(sa.select(sa.func.max(users.c.customer_number))).scalar() or 10000,
        10000,
    )
    customer_rows = []
    vip_rng = random.Random(f"{seed}:{user_id}:vip")  # the forum's content stays as it was
    for _ in range(customer_count):
        first, last = rng.choice(names["first_names"]), rng.choice(names["last_names"])
        number += 1
        customer_rows.append(
            {
                "id": user_id,
                "customer_number": number,
                "email": email_address(rng, first, last, taken),
                "name": f"{first} {last}",
                "title": None,
                "role": "customer",
                "password_hash": password_hash,
                "created_at": None,
                "vip": vip_rng.random() < VIP_SHARE,
            }
        )
        first_names[user_id] = first
        user_id += 1
    joined_before: dict[int, datetime] = {}  # existing customers writing again: their created_at
    if customer_rows:
        customer_ids = [row["id"] for row in customer_rows]
    else:  # more content for the customers already there
        found = connection.execute(
            sa.select(users.c.id, users.c.name, users.c.created_at).where(
                users.c.role == "customer"
            )
        ).all()
        customer_ids = [row.id for row in found]
        first_names.update((row.id, row.name.split()[0]) for row in found)
        joined_before.update((row.id, row.created_at) for row in found)
    if topic_count and not customer_ids:
        raise ValueError("no customers to write topics: pass customers > 0")
    # A few busy customers write much of the forum, as in every forum.
    customer_weights = list(accumulate(min(25.0, rng.lognormvariate(0, 1)) for _ in customer_ids))

    def customer() -> int:
        return rng.choices(customer_ids, cum_weights=customer_weights)[0]

    def staff_member() -> int:
        return rng.choices(staff_ids, cum_weights=staff_weights)[0]

    # Categories: each theme's own, or any open one when an admin renamed them.
    category_rows = connection.execute(
        sa.select(categories.c.id, categories.c.slug, categories.c.staff_topics_only)
    ).all()
    open_ids = [row.id for row in category_rows if not row.staff_topics_only]
    by_slug = {row.slug: row.id for row in category_rows}
    announce_id = by_slug.get("ankuendigungen") or next(
        (row.id for row in category_rows if row.staff_topics_only), None
    )
    if topic_count and not open_ids:
        raise ValueError("no category open for customer topics")

    def category_for(slug: str) -> int:
        return by_slug.get(slug) or open_ids[sum(map(ord, slug)) % len(open_ids)]

    # Topic plan: a few staff announcements and pinned FAQs, the rest customer questions.
    # Announcements and FAQs are written once; a second run adds only questions.
    existing_titles = set(connection.execute(sa.select(topics.c.title)).scalars())
    new_announcements = [
        announcement
        for announcement in forum_pools["announcements"]
        if announcement["title"] not in existing_titles
    ]
    new_faqs = [faq for faq in forum_pools["faqs"] if faq["title"] not in existing_titles]
    announcements = min(len(new_announcements), 2 + topic_count // 2000) if topic_count >= 5 else 0
    if announce_id is None:
        announcements = 0
    faqs = min(len(new_faqs), 1 + topic_count // 2000) if topic_count >= 20 else 0
    writer = ForumWriter(rng)
    theme_list = list(themes_by_key.values())
    theme_weights = [theme.weight for theme in theme_list]
    planned: list[_Topic] = []
    for announcement in rng.sample(new_announcements, announcements):
        planned.append(
            _Topic(
                kind="announcement",
                theme=None,
                category_id=announce_id,
                title=announcement["title"],
                author_id=staff_member(),
                created=rng.uniform(0.05, 0.98) * horizon,
                values=Values(),
                body=announcement["body"],
            )
        )
    for faq in new_faqs[:faqs]:
        planned.append(
            _Topic(
                kind="faq",
                theme=themes_by_key[faq["theme"]],
                category_id=category_for(faq["category"]),
                title=faq["title"],
                author_id=staff_member(),
                created=rng.uniform(0.0, 30 * DAY),
                values=placeholder_values(rng),
                pinned=True,
                body=faq["body"],
            )
        )
    # Every title once: a later run's too. Its own random stream, so that a title that needs
    # a detail leaves the content of the other topics as the seed always wrote it.
    title_rng = random.Random(f"{seed}:{user_id}:titles")
    taken_titles = {title.removeprefix(SOLVED_PREFIX) for title in existing_titles}
    taken_titles.update(topic.title for topic in planned)
    decks: list[list[Theme]] = [[] for _ in theme_list]  # each subject's titles, dealt as cards
    for _ in range(topic_count - len(planned)):
        index = rng.choices(range(len(theme_list)), theme_weights)[0]
        deck = decks[index]
        if not deck:  # every title of a subject comes up once before any comes up again
            deck.extend(theme_list[index].topics)
            rng.shuffle(deck)
        theme = deck.pop()  # the title's own theme: its posts answer what it asks
        values = placeholder_values(rng)
        title, values = _unique_title(title_rng, theme.titles[0], values, taken_titles)
        # Activity grows over the two years, as a shop's customer base does.
        planned.append(
            _Topic(
                kind="question",
                theme=theme,
                category_id=category_for(theme.slug),
                title=title,
                author_id=customer(),
                created=rng.random() ** 0.75 * horizon,
                values=values,
            )
        )
    announced = sorted((t for t in planned if t.kind == "announcement"), key=lambda t: t.created)
    for topic in announced[-2:] if len(announced) >= 3 else announced[-1:]:
        topic.pinned = True

    # Replies: a skewed split, so many topics have a few answers and some run long.
    weights = []
    for topic in planned:
        weight = rng.lognormvariate(0, 1.15)
        weights.append(weight * {"announcement": 0.3, "faq": 2.0}.get(topic.kind, 1.0))
    for topic, replies in zip(planned, _split_replies(rng, weights, total - topic_count)):
        topic.replies = replies
        _plan_posts(rng, topic, SPAN_DAYS * DAY - 300.0, customer, staff_member)
    questions = [t for t in planned if t.kind == "question" and t.replies >= 1]
    for topic in rng.sample(questions, min(len(questions), 1 + topic_count // 800)):
        topic.locked = True
        topic.roles[-1], topic.authors[-1] = "lock", staff_member()
    for topic in questions:
        if topic.replies >= 2 and not topic.locked and rng.random() < 0.04:
            topic.title = SOLVED_PREFIX + topic.title

    # Ids follow time, as they would have had the posts been written one by one.
    planned.sort(key=lambda t: t.created)
    topic_id = next_id(topics.c.id)
    for topic in planned:
        topic.id, topic_id = topic_id, topic_id + 1
    events = sorted(
        (time_, index, seq)
        for index, topic in enumerate(planned)
        for seq, time_ in enumerate(topic.times)
    )

    # Customers joined before their first post; the others at any time.
    first_post: dict[int, float] = {}
    for time_, index, seq in events:
        first_post.setdefault(planned[index].authors[seq], time_)
    for row in customer_rows:
        joined = first_post.get(row["id"])
        if joined is None:
            joined = rng.uniform(-90 * DAY, horizon)
        else:
            joined -= rng.choice((rng.uniform(600, DAY), rng.uniform(DAY, 120 * DAY)))
        row["created_at"] = start + timedelta(seconds=int(joined))
    earlier = []
    for id_, joined_at in joined_before.items():
        if id_ in first_post and joined_at > start + timedelta(seconds=first_post[id_]):
            joined = first_post[id_] - rng.uniform(DAY, 60 * DAY)
            earlier.append({"id_": id_, "created_at": start + timedelta(seconds=int(joined))})
    if earlier:
        connection.execute(
            users.update().where(users.c.id == sa.bindparam("id_")),
            earlier,
        )

    for chunk in _chunks(staff_rows + customer_rows, 2000):
        connection.execute(users.insert(), chunk)
    if planned:
        connection.execute(
            topics.insert(),
            [
                {
                    "id": topic.id,
                    "category_id": topic.category_id,
                    "title": topic.title,
                    "author_id": topic.author_id,
                    "created_at": start + timedelta(seconds=topic.created),
                    "pinned": topic.pinned,
                    "locked": topic.locked,
                    "last_post_at": start + timedelta(seconds=topic.times[-1]),
                }
                for topic in planned
            ],
        )

    post_id = next_id(posts.c.id)
    progress = Progress("Demo posts", "posts", total=len(events))
    rows = []
    solutions: dict[int, int] = {}  # a solved question's first staff answer is its solution
    for time_, index, seq in events:
        topic = planned[index]
        author_id = topic.authors[seq]
        if (
            seq > 0
            and topic.title.startswith("[Gelöst] ")
            and topic.roles[seq] == "staff"
            and topic.id not in solutions
        ):
            solutions[topic.id] = post_id
        created = start + timedelta(seconds=time_)
        body, html = _post_body(writer, topic, seq, first_names)
        edited = created + timedelta(minutes=rng.randint(2, 90)) if rng.random() < 0.03 else None
        rows.append(
            {
                "id": post_id,
                "topic_id": topic.id,
                "author_id": author_id,
                "body": body,
                "body_html": html,
                "created_at": created,
                "edited_at": edited if edited is None or edited < now else now,
                "edited_by": author_id if edited else None,
            }
        )
        post_id += 1
        if len(rows) == 5000:
            connection.execute(posts.insert(), rows)
            progress.update(len(rows))
            rows = []
    if rows:
        connection.execute(posts.insert(), rows)
        progress.update(len(rows))
    progress.close()
    if solutions:
        connection.execute(
            topics.update().where(topics.c.id == sa.bindparam("topic_id")),
            [{"topic_id": topic, "solution_post_id": post} for topic, post in solutions.items()],
        )

    recount(connection)
    connection.execute(
        sa.text(
            "UPDATE users SET last_posted_at = (SELECT max(created_at) FROM posts"
            " WHERE posts.author_id = users.id AND posts.deleted_at IS NULL)"
            " WHERE id IN (SELECT DISTINCT author_id FROM posts)"
        )
    )
    example = None
    if customer_rows:
        first_row = customer_rows[0]
        example = f"{first_row['email']} or customer number {first_row['customer_number']}"
    numbers = (
        f" (customer numbers {customer_rows[0]['customer_number']}"
        f"–{customer_rows[-1]['customer_number']})"
        if customer_rows
        else ""
    )
    return {
        "customers": len(customer_rows),
        "numbers": numbers,
        "staff": len(staff_rows),
        "example": example,
        "example_id": customer_rows[0]["id"] if customer_rows else None,
    }


def _plan_posts(rng, topic: _Topic, end: float, customer, staff_member) -> None:
    """Times and authors of a topic's posts, the first post included, all before `end`."""
    gaps = _reply_gaps(rng, topic.replies, end - topic.created) if topic.replies else []
    topic.times = list(accumulate([topic.created] + gaps))
    topic.authors, topic.roles = [topic.author_id], ["author"]
    starter_is_staff = topic.kind != "question"
    for seq in range(1, topic.replies + 1):
        previous = topic.roles[-1]
        roll = rng.random()
        if starter_is_staff:
            role = "staff" if previous == "peer" and roll < 0.35 else "peer"
        elif seq == 1:
            role = "staff" if roll < 0.7 else "peer"
        elif previous == "staff":
            role = "author" if roll < 0.55 else "peer" if roll < 0.9 else "staff"
        elif previous == "author":
            role = "staff" if roll < 0.55 else "peer"
        else:
            role = "author" if roll < 0.35 else "staff" if roll < 0.6 else "peer"
        if role == "author":
            author = topic.author_id
        elif role == "staff":
            author = staff_member()
        else:
            author = customer()
            if author in (topic.author_id, topic.authors[-1]):
                author = customer()  # a second draw keeps most peers distinct
        topic.roles.append(role)
        topic.authors.append(author)


def _post_body(
    writer: ForumWriter, topic: _Topic, seq: int, first_names: dict[int, str]
) -> tuple[str, str]:
    """A post's markdown and HTML; called in time order, so a topic's state builds up."""
    role = topic.roles[seq]
    if seq == 0 and topic.body:
        return writer.body([writer.pieces.block(topic.body)], Values())
    previous = topic.roles[seq - 1] if seq else None
    values = Values(
        topic.values, me=first_names[topic.authors[seq]], name=first_names[topic.author_id]
    )
    if topic.kind == "announcement":
        parts = writer.announcement_reply(staff=role == "staff")
    elif seq == 0:
        parts = writer.question(topic.theme)
    elif role == "lock":
        parts = writer.lock_note()
    elif role == "staff":
        first = "staff" not in topic.roles[1:seq]
        parts = writer.staff_answer(topic.theme, first=first, to_all=previous == "peer")
    elif role == "author":
        parts, topic.resolved = writer.author_followup(topic.theme, topic.resolved)
    else:
        parts = writer.peer_reply(topic.theme)
    return writer.body(parts, values)


def _chunks(rows: list[dict], size: int):
    for offset in range(0, len(rows), size):
        yield rows[offset : offset + size]
