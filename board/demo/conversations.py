"""Demo conversations: German support requests, answers, internal notes and invoice notices.

`add_conversations` runs after the demo forum (board.demo.forum), with the same people and
the same text machinery (board.demo.writing). It plans every conversation in memory (who
writes what, when), gives message ids in time order, takes each conversation's summary
columns from board.conversations.summary as every other writer does, and hands the rows
to board.conversations.bulk.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice
from zoneinfo import ZoneInfo

import regex
import sqlalchemy as sa

from board.conversations.bulk import insert_histories
from board.conversations.numbers import FIRST_TICKET_NUMBER
from board.conversations.summary import Said, summary_columns
from board.db import blocked_senders, conversations, messages, users, utcnow
from board.demo.people import DEMO_STAFF, email_address
from board.demo.pools import Theme, read_pools, themes
from board.demo.writing import Values, Writer, placeholder_values
from board.hours import BusinessHours
from board.markup import SUBJECT_LENGTH, plain_text
from board.progress import Progress

_GRAPHEME = regex.compile(r"\X")  # as board.markup.subject_from counts characters

DAY = 86_400.0
SPAN_DAYS = 365  # the inbox has been in use for about a year
STATUS_WEIGHTS = {"open": 12, "pending": 18, "solved": 67, "spam": 3}
INVOICE_SHARE = 0.02  # invoice notices staff sent into a customer's inbox
GUEST_SHARE = 0.03  # requests through the contact form; spam comes almost only that way
GUEST_SHARE_OF_SPAM = 0.9
UNASSIGNED_OPEN_SHARE = 0.10  # new requests nobody has taken yet
NOTE_SHARE = 0.15  # conversations with an internal note before the first answer
STAFF_TURNS = frozenset({"s", "a", "note"})

# The inbox of the example customer that `demo` prints, so that whoever logs in with it
# sees every state a customer meets: (kind, status, public turns, read by the customer).
# Turns: "c" the customer, "s" staff answering, "a" staff asking back.
EXAMPLE_INBOX = (
    ("support", "open", ("c",), True),  # just written, nobody has taken it yet
    ("support", "open", ("c", "s", "c"), True),  # answered, and waiting for the shop again
    ("support", "pending", ("c", "a"), False),  # an answer waits, unread: badge and bell
    ("support", "pending", ("c", "s", "c", "a"), True),  # answer available, already read
    ("support", "solved", ("c", "s", "c"), True),  # done after the customer's thanks
    ("support", "solved", ("c", "a", "c", "s"), True),
    ("invoice", "solved", ("s",), True),  # an invoice notice
)


class ConversationWriter(Writer):
    """Message bodies for one private conversation, as lists of (markdown, html) pieces."""

    asked_for = ""  # what staff asked for last: the customer's next reply gives it

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.pools, self.forum_pools = read_pools("conversations"), read_pools("forum")
        # The forum's closers, less those that point to the Postfach: a conversation is in it.
        self.closers = (
            *(closer for closer in self.forum_pools["staff_closers"] if "Postfach" not in closer),
            *self.pools["private_closers"],
        )
        self._plain: dict[str, str] = {}

    def subject(self, parts: list[tuple[str, str]], values: Values) -> tuple[str, bool]:
        """subject_from(body) without parsing every body: each piece's plain text is kept.

        A body is its pieces as blocks, so its plain text is theirs joined by a space; the
        values filled in afterwards hold no markup and no runs of whitespace.
        """
        texts = []
        for markdown, _html in parts:
            text = self._plain.get(markdown)
            if text is None:
                text = self._plain[markdown] = plain_text(markdown)
            texts.append(text)
        text = " ".join(texts).format_map(values)
        clusters = [match.group() for match in islice(_GRAPHEME.finditer(text), SUBJECT_LENGTH + 1)]
        if len(clusters) <= SUBJECT_LENGTH:
            return "".join(clusters), False
        return "".join(clusters[:SUBJECT_LENGTH]).rstrip(), True

    def request(self, theme: Theme) -> list[tuple[str, str]]:
        rng = self.rng
        greeting = rng.choice(self.pools["private_greetings"]) if self._maybe(0.3) else None
        sentences = [rng.choice(theme.openings)]
        if self._maybe(0.6):
            sentences.append(rng.choice(self.pools["order_references"]))
        sentences += self._some(theme.details, 0, 2)
        parts = self._greeted(greeting, sentences)
        if theme.customer_blocks and self._maybe(0.2):
            parts.append(self.pieces.block(rng.choice(theme.customer_blocks)))
        parts.append(self.pieces.paragraph(self._some(theme.questions, 1, 2)))
        if self._maybe(0.7):
            parts.append(self.pieces.block(rng.choice(self.forum_pools["customer_signoffs"])))
        return parts

    def answer(self, theme: Theme, first: bool) -> list[tuple[str, str]]:
        rng = self.rng
        sentences = [rng.choice(self.pools["staff_thanks"])] if first and self._maybe(0.4) else []
        sentences += self._some(theme.answers, 1, 3 if first else 2)
        parts = self._greeted(rng.choice(self.pools["private_staff_greetings"]), sentences)
        if theme.staff_blocks and self._maybe(0.25 if first else 0.1):
            parts.append(self.pieces.block(rng.choice(theme.staff_blocks)))
        if self._maybe(0.6):
            parts.append(self.pieces.paragraph([rng.choice(self.closers)]))
        parts.append(self.pieces.block(rng.choice(self.forum_pools["staff_signoffs"])))
        return parts

    def ask(self, theme_key: str) -> list[tuple[str, str]]:
        """Staff need something from the customer; `reply(asked=True)` gives exactly that."""
        rng = self.rng
        asked = rng.choice(self.pools["asks"][theme_key])
        question, self.asked_for = asked["question"], asked["answer"]
        parts = self._greeted(rng.choice(self.pools["private_staff_greetings"]), [question])
        parts.append(self.pieces.block(rng.choice(self.forum_pools["staff_signoffs"])))
        return parts

    def reply(self, theme: Theme, asked: bool) -> list[tuple[str, str]]:
        rng = self.rng
        if asked:
            sentences = [self.asked_for]
        else:
            sentences = [rng.choice(self.forum_pools["author_still_stuck"])]
            if self._maybe(0.5):
                sentences.append(rng.choice(theme.questions))
        parts = [self.pieces.paragraph(sentences)]
        if self._maybe(0.4):
            parts.append(self.pieces.block(rng.choice(self.forum_pools["customer_signoffs"])))
        return parts

    def thanks(self) -> list[tuple[str, str]]:
        parts = [self.pieces.paragraph([self.rng.choice(self.forum_pools["author_thanks"])])]
        if self._maybe(0.4):
            parts.append(self.pieces.block(self.rng.choice(self.pools["thanks_signoffs"])))
        return parts

    def nudge(self) -> list[tuple[str, str]]:
        return [self.pieces.paragraph([self.rng.choice(self.pools["nudges"])])]

    def note(self) -> list[tuple[str, str]]:
        return [self.pieces.paragraph([self.rng.choice(self.pools["internal_notes"])])]

    def invoice(self) -> list[tuple[str, str]]:
        rng = self.rng
        sentences = [
            rng.choice(self.pools["invoice_notices"]),
            *self._some(self.pools["invoice_details"], 0, 1),
        ]
        parts = self._greeted(rng.choice(self.pools["private_staff_greetings"]), sentences)
        parts.append(self.pieces.block(rng.choice(self.forum_pools["staff_signoffs"])))
        return parts

    def spam(self) -> list[tuple[str, str]]:
        return [self.pieces.block(self.rng.choice(self.pools["spam"]))]


# --- planning ----------------------------------------------------------------------------


@dataclass
class _Person:
    id: int | None  # None: a guest
    name: str
    vip: bool = False
    joined: datetime | None = None


@dataclass
class _Message:
    time: datetime
    role: str  # "customer", "staff" or "note"
    author_id: int | None
    body: str
    html: str
    id: int = 0


@dataclass
class _Conversation:
    kind: str
    status: str
    customer: _Person
    assignee_id: int | None
    messages: list[_Message] = field(default_factory=list)
    guest_email: str | None = None
    guest_token_hash: str | None = None
    subject: tuple[str, bool] = ("", False)
    read_by_customer: bool | None = None  # None: read as customers do, older answers mostly
    id: int = 0
    number: int = 0


def _roles(rng: random.Random, kind: str, status: str, assigned: bool) -> list[str]:
    """The public turns in order: "c" the customer, "s" staff, "a" staff asking back."""
    if kind == "invoice":
        return ["s"]  # notices take no replies; a question about one is a new request
    if status == "spam":
        return ["c"]
    if status == "open":
        if not assigned:
            return ["c"] if rng.random() < 0.8 else ["c", "c"]
        turns = rng.choices((1, 3, 5, 7), (40, 35, 18, 7))[0]
        roles = ["c" if i % 2 == 0 else "s" for i in range(turns)]
        if turns < 8 and rng.random() < 0.1:
            roles.append("c")  # a nudge while waiting
        return roles
    pairs = rng.choices((1, 2, 3, 4), (50, 30, 14, 6))[0]
    roles = ["c", "s"] * pairs
    if status == "pending":
        roles[-1] = "a"
    elif len(roles) < 8 and rng.random() < 0.4:
        roles.append("c")  # the customer's thanks, then staff set it solved
    for index in range(1, len(roles) - 1):
        if roles[index] == "s" and rng.random() < 0.3:
            roles[index] = "a"
    return roles


def _age(rng: random.Random, kind: str, status: str) -> float:
    """Seconds before now the conversation began: waiting ones are young, settled ones any age."""
    if kind == "support" and status == "open":
        return min(45 * DAY, rng.expovariate(1 / (1.5 * DAY))) + 600.0
    if kind == "support" and status == "pending":
        return min(60 * DAY, rng.expovariate(1 / (4 * DAY))) + 3600.0
    return SPAN_DAYS * DAY * rng.random() ** 1.15 + 7200.0


def _gap(rng: random.Random, previous: str, role: str) -> float:
    if role == "note":
        return rng.expovariate(1 / 7200.0) + 120.0
    if role in ("s", "a"):
        return rng.expovariate(1 / (6 * 3600.0)) + 600.0
    if previous == "c":
        return rng.expovariate(1 / DAY) + 3600.0  # a nudge
    return rng.expovariate(1 / (18 * 3600.0)) + 300.0


def _office_moment(moment: datetime, office: BusinessHours) -> datetime:
    """`moment` (naive UTC) when the shop is open then, else some minutes after it next
    opens: the team answers in its working hours, as the statistics' business hours assume."""
    zone = ZoneInfo(office.timezone)
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    day = local.date()
    for _ in range(8):
        if day.weekday() in office.days:
            opens = datetime.combine(day, office.opens, tzinfo=zone)
            closes = datetime.combine(day, office.closes, tzinfo=zone)
            if local < closes:
                if local >= opens:
                    return moment
                # Not everyone starts with the queue: 5 to 84 minutes after opening.
                later = opens + timedelta(minutes=5 + moment.second * 79 // 59)
                return later.astimezone(UTC).replace(tzinfo=None, microsecond=moment.microsecond)
        day += timedelta(days=1)
    return moment  # a shop that never opens


class _Planner:
    def __init__(
        self, rng: random.Random, now: datetime, customers, staff, office: BusinessHours
    ) -> None:
        self.rng = rng
        self.now = now
        self.office = office
        self.writer = ConversationWriter(rng)
        self.customers = customers
        self.customer_weights = list(
            accumulate(min(25.0, rng.lognormvariate(0, 1)) for _ in customers)
        )
        self.staff = staff  # [(id, first name)]
        self.themes = themes()
        self.theme_keys = list(self.themes)
        self.theme_weights = [theme.weight for theme in self.themes.values()]
        self.names = read_pools("names")
        self.taken_guest_emails: set[str] = set()

    def plan(self) -> _Conversation:
        rng = self.rng
        kind = "invoice" if rng.random() < INVOICE_SHARE else "support"
        status = "solved" if kind == "invoice" else self._status()
        guest_share = GUEST_SHARE_OF_SPAM if status == "spam" else GUEST_SHARE
        customer = self._guest() if kind == "support" and rng.random() < guest_share else None
        if customer is None:
            customer = rng.choices(self.customers, cum_weights=self.customer_weights)[0]
        assigned = not (status == "open" and rng.random() < UNASSIGNED_OPEN_SHARE)
        assignee_id, assignee_first = rng.choice(self.staff) if assigned else (None, "")
        conversation = _Conversation(kind, status, customer, assignee_id)
        if customer.id is None:
            conversation.guest_email = self._guestemail_address(customer.name)
            token = f"{rng.getrandbits(128):032x}"  # nobody holds it: only its hash is kept
            conversation.guest_token_hash = hashlib.sha256(token.encode()).hexdigest()

        roles = _roles(rng, kind, status, assigned)
        if kind == "support" and any(role in ("s", "a") for role in roles):
            if rng.random() < NOTE_SHARE:
                first_staff = next(i for i, role in enumerate(roles) if role in ("s", "a"))
                roles.insert(first_staff, "note")
            if rng.random() < 0.05:
                roles.append("note")
        self._write(conversation, roles, assignee_first)
        return conversation

    def plan_example(
        self, customer: _Person, kind: str, status: str, roles: tuple[str, ...], read: bool
    ) -> _Conversation:
        """One conversation of EXAMPLE_INBOX: its turns and its reading are given."""
        assigned = roles != ("c",)
        assignee_id, assignee_first = self.rng.choice(self.staff) if assigned else (None, "")
        conversation = _Conversation(kind, status, customer, assignee_id, read_by_customer=read)
        self._write(conversation, list(roles), assignee_first)
        return conversation

    def _status(self) -> str:
        return self.rng.choices(tuple(STATUS_WEIGHTS), tuple(STATUS_WEIGHTS.values()))[0]

    def _guest(self) -> _Person:
        first, last = (
            self.rng.choice(self.names["first_names"]),
            self.rng.choice(self.names["last_names"]),
        )
        return _Person(None, f"{first} {last}")

    def _guestemail_address(self, name: str) -> str:
        first, last = name.split(" ", 1)
        return email_address(self.rng, first, last, self.taken_guest_emails)

    def _times(self, conversation: _Conversation, roles: list[str]) -> list[datetime]:
        rng = self.rng
        start = self.now - timedelta(seconds=_age(rng, conversation.kind, conversation.status))
        joined = conversation.customer.joined
        if joined is not None and start < joined:  # nobody writes before they registered
            latest = self.now - timedelta(minutes=10)
            start = min(joined + timedelta(seconds=rng.uniform(600, 2 * DAY)), latest)
        gaps = [_gap(rng, previous, role) for previous, role in zip(roles, roles[1:])]
        available = (self.now - start).total_seconds() - 60.0
        total = sum(gaps)
        if total > available:
            scale = max(available, 0.0) / total
            gaps = [gap * scale for gap in gaps]
        offsets = list(accumulate([0.0, *gaps]))
        # Whole seconds, and a microsecond per message so that a conversation never ties.
        times = [
            start + timedelta(seconds=round(offset), microseconds=index)
            for index, offset in enumerate(offsets)
        ]
        # Staff write in opening hours: an answer planned for the night waits for the morning,
        # and what follows it moves along, unless that would reach past now.
        latest = self.now - timedelta(minutes=1)
        for index, role in enumerate(roles):
            if role in STAFF_TURNS:
                delay = _office_moment(times[index], self.office) - times[index]
                if delay and times[-1] + delay <= latest:
                    times[index:] = [moment + delay for moment in times[index:]]
        return times

    def _write(self, conversation: _Conversation, roles: list[str], assignee_first: str) -> None:
        rng, writer = self.rng, self.writer
        customer = conversation.customer
        first = customer.name.split(" ", 1)[0]
        if conversation.kind == "invoice":
            theme_key = "rechnung"
        else:
            theme_key = rng.choices(self.theme_keys, self.theme_weights)[0]
        theme = rng.choice(self.themes[theme_key].topics)  # one title's question and answers
        values = Values(placeholder_values(rng), order=str(rng.randint(2_000_000, 2_999_999)))
        values.update(name=first, full=customer.name)
        answered = False
        for index, (role, when) in enumerate(zip(roles, self._times(conversation, roles))):
            previous = roles[index - 1] if index else None
            if role == "c":
                author_id, me = customer.id, first
                if conversation.status == "spam":
                    parts = writer.spam()
                elif index == 0:
                    parts = writer.request(theme)
                elif previous == "c":
                    parts = writer.nudge()
                elif index == len(roles) - 1 and conversation.status == "solved":
                    parts = writer.thanks()
                else:
                    parts = writer.reply(theme, asked=previous == "a")
                kind = "customer"
            elif role == "note":
                author_id, me = self._colleague(conversation.assignee_id)
                parts, kind = writer.note(), "note"
            else:
                author_id, me = conversation.assignee_id, assignee_first
                if rng.random() < 0.1:
                    author_id, me = self._colleague(conversation.assignee_id)
                if conversation.kind == "invoice" and index == 0:
                    parts = writer.invoice()
                elif role == "a":
                    parts = writer.ask(theme_key)
                else:
                    parts = writer.answer(theme, first=not answered)
                answered = True
                kind = "staff"
            message_values = Values(values, me=me)
            if index == 0:
                conversation.subject = writer.subject(parts, message_values)
            body, html = writer.body(parts, message_values)
            conversation.messages.append(_Message(when, kind, author_id, body, html))

    def _colleague(self, assignee_id: int | None) -> tuple[int, str]:
        others = [member for member in self.staff if member[0] != assignee_id] or self.staff
        return self.rng.choice(others)


# --- rows --------------------------------------------------------------------------------


def conversation_row(conversation: _Conversation, markers: list[dict]) -> dict:
    """The conversation's columns; the summary ones derived from its messages as by any writer,
    the customer's read marker mirrored as records.mark_read_up_to keeps it."""
    history = [
        Said(
            id=message.id,
            author_id=message.author_id,
            from_staff=message.role != "customer",
            internal=message.role == "note",
            at=message.time,
        )
        for message in conversation.messages
    ]
    subject, cut = conversation.subject
    customer = conversation.customer
    return {
        "id": conversation.id,
        "number": conversation.number,
        "kind": conversation.kind,
        "subject": subject,
        "subject_cut": cut,
        "status": conversation.status,
        "customer_id": customer.id,
        "guest_name": customer.name if customer.id is None else None,
        "guest_email": conversation.guest_email,
        "guest_token_hash": conversation.guest_token_hash,
        "vip": customer.vip,
        "customer_read_message_id": next(
            (
                marker["last_read_message_id"]
                for marker in markers
                if customer.id is not None and marker["user_id"] == customer.id
            ),
            None,
        ),
        **summary_columns(history, conversation.status, conversation.assignee_id),
    }


def _message_rows(conversation: _Conversation) -> list[dict]:
    return [
        {
            "id": message.id,
            "conversation_id": conversation.id,
            "author_id": message.author_id,
            "body": message.body,
            "body_html": message.html,
            "internal": message.role == "note",
            "created_at": message.time,
        }
        for message in conversation.messages
    ]


def _events(conversation: _Conversation, staff_names: dict[int, str], now: datetime) -> list[dict]:
    """Status history: the rotation's assignment and the last change of status."""
    rows = []
    first, last = conversation.messages[0], conversation.messages[-1]
    if conversation.kind == "support" and conversation.assignee_id is not None:
        rows.append(
            _event(
                conversation,
                None,
                "assignee",
                None,
                staff_names[conversation.assignee_id],
                first.time,
            )
        )
    if conversation.status == "pending":
        asked = [message for message in conversation.messages if message.role == "staff"][-1]
        rows.append(_event(conversation, asked.author_id, "status", "open", "pending", asked.time))
    elif conversation.kind == "support" and conversation.status in ("solved", "spam"):
        when = min(last.time + timedelta(minutes=15), now)
        rows.append(
            _event(
                conversation, conversation.assignee_id, "status", "open", conversation.status, when
            )
        )
    return rows


def _event(conversation, actor_id, action, old, new, when) -> dict:
    return {
        "conversation_id": conversation.id,
        "actor_id": actor_id,
        "action": action,
        "old_value": old,
        "new_value": new,
        "note": "",
        "created_at": when,
    }


def _markers(conversation: _Conversation, now: datetime, rng: random.Random) -> list[dict]:
    """What each party has read: staff their own last answer, customers mostly everything."""
    last_read: dict[int, tuple[int, datetime]] = {}
    for message in conversation.messages:
        if message.role != "note" and message.author_id is not None:
            last_read[message.author_id] = (message.id, message.time)
    customer_id = conversation.customer.id
    public = [message for message in conversation.messages if message.role != "note"]
    newest = public[-1]
    if customer_id is not None and newest.author_id != customer_id:
        read = conversation.read_by_customer
        if read is None:
            # Answers older than two days have mostly been read; newer ones wait as unread.
            read = newest.time < now - timedelta(days=2) and rng.random() < 0.9
        if read:
            last_read[customer_id] = (newest.id, newest.time + timedelta(hours=2))
    return [
        {
            "user_id": user_id,
            "conversation_id": conversation.id,
            "last_read_message_id": message_id,
            "read_at": min(when, now),
        }
        for user_id, (message_id, when) in last_read.items()
    ]


def _notifications(conversation: _Conversation, markers: list[dict]) -> list[dict]:
    """What the app tells a customer of each answer and invoice: one notification per
    message from the shop, read once the customer has read that message. The header's
    unread badge and the bell then agree, as they do for everything written live."""
    customer_id = conversation.customer.id
    if customer_id is None:
        return []  # guests hear by mail only
    read = next((row for row in markers if row["user_id"] == customer_id), None)
    kind = "invoice" if conversation.kind == "invoice" else "answer"
    return [
        {
            "user_id": customer_id,
            "kind": kind,
            "conversation_id": conversation.id,
            "created_at": message.time,
            "read_at": read["read_at"]
            if read is not None and read["last_read_message_id"] >= message.id
            else None,
        }
        for message in conversation.messages
        if message.role == "staff"
    ]


def _blocked_rows(
    connection: sa.Connection, planned: list[_Conversation], now: datetime
) -> list[dict]:
    """Marking a guest's message as spam blocks the address, as staff marking it would."""
    blocked = set(connection.execute(sa.select(blocked_senders.c.email)).scalars())
    rows = []
    for conversation in planned:
        email = conversation.guest_email
        if conversation.status == "spam" and email and email not in blocked:
            blocked.add(email)
            rows.append(
                {
                    "email": email,
                    "conversation_id": conversation.id,
                    "blocked_by": conversation.assignee_id,
                    "created_at": min(conversation.messages[-1].time + timedelta(minutes=15), now),
                }
            )
    return rows


# --- the command's part ------------------------------------------------------------------


def _next_value(connection: sa.Connection, column: sa.Column, floor: int = 1) -> int:
    return max(floor, (connection.execute(sa.select(sa.func.max(column))).scalar() or 0) + 1)


def add_conversations(
    connection: sa.Connection,
    seed: int,
    count: int,
    office: BusinessHours | None = None,
    example_customer_id: int | None = None,
) -> tuple[int, int] | None:
    """Adds `count` conversations from the customers in the database; returns the number range.
    Staff answer within `office` hours where they can (the default shop's when not given).
    The example customer, when given, gets EXAMPLE_INBOX among them (as many as fit)."""
    if count <= 0:
        return None
    now = utcnow().replace(microsecond=0)

    customers = [
        _Person(row.id, row.name, row.vip, row.created_at)
        for row in connection.execute(
            sa.select(users.c.id, users.c.name, users.c.vip, users.c.created_at)
            .where(users.c.role == "customer", users.c.is_active.is_(True))
            .order_by(users.c.id)
        )
    ]
    staff_names = dict(
        connection.execute(
            sa.select(users.c.id, users.c.name)
            .where(users.c.email.in_([email for _name, email in DEMO_STAFF]))
            .order_by(users.c.id)
        ).all()
    )
    staff = [(id_, name.split()[0]) for id_, name in staff_names.items()]
    if not customers:
        raise ValueError("no customers to write conversations: pass customers > 0")
    if not staff:
        raise ValueError("the demo staff are missing")
    first_number = _next_value(connection, conversations.c.number, FIRST_TICKET_NUMBER)
    rng = random.Random(f"{seed}:conversations:{first_number}")
    planner = _Planner(rng, now, customers, staff, office or BusinessHours())

    example = next((person for person in customers if person.id == example_customer_id), None)
    example_inbox = EXAMPLE_INBOX[:count] if example is not None else ()
    with Progress("Demo conversations", "conversations", total=count) as progress:
        planned = []
        for _ in range(count - len(example_inbox)):
            planned.append(planner.plan())
            progress.update(1)
        # A random stream of its own: the example's inbox leaves the others' draws alone.
        example_planner = _Planner(
            random.Random(f"{seed}:example:{first_number}"), now, customers, staff, planner.office
        )
        for kind, status, roles, read in example_inbox:
            planned.append(example_planner.plan_example(example, kind, status, roles, read))
            progress.update(1)
        _store(connection, planned, first_number, staff_names, now, rng)
    return first_number, first_number + count - 1


def _store(
    connection: sa.Connection,
    planned: list[_Conversation],
    first_number: int,
    staff_names: dict[int, str],
    now: datetime,
    rng: random.Random,
) -> None:
    """Gives the planned conversations ids, numbers and message ids, then inserts them."""
    # Ids and numbers follow time, as they would have had everything been written in order.
    planned.sort(key=lambda conversation: conversation.messages[0].time)
    conversation_id = _next_value(connection, conversations.c.id)
    for offset, conversation in enumerate(planned):
        conversation.id = conversation_id + offset
        conversation.number = first_number + offset
    message_id = _next_value(connection, messages.c.id)
    for message in sorted(
        (message for conversation in planned for message in conversation.messages),
        key=lambda message: message.time,
    ):
        message.id, message_id = message_id, message_id + 1

    # The read markers draw from `rng` after all the planning, as they always have:
    # a seed keeps writing the same content.
    markers = {conversation.id: _markers(conversation, now, rng) for conversation in planned}
    insert_histories(
        connection,
        conversation_rows=[
            conversation_row(conversation, markers[conversation.id]) for conversation in planned
        ],
        message_rows=[row for conversation in planned for row in _message_rows(conversation)],
        event_rows=[
            row for conversation in planned for row in _events(conversation, staff_names, now)
        ],
        marker_rows=[row for rows in markers.values() for row in rows],
        blocked_rows=_blocked_rows(connection, planned, now),
        notification_rows=sorted(
            (
                row
                for conversation in planned
                for row in _notifications(conversation, markers[conversation.id])
            ),
            key=lambda row: row["created_at"],  # ids follow time: the bell shows the newest
        ),
    )
