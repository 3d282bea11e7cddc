"""Demo conversations: German support requests, answers, internal notes and invoice notices.

`add_conversations` runs after the forum part of `board.demo`, with the same people and the
same text machinery. It plans every conversation in memory (who writes what, when), gives
message ids in time order, computes each conversation's derived columns the way
board.inbox.queries keeps them message by message, and inserts raw rows in bulk.
"""

# The German text pools keep one sentence per line, however long it is.
# ruff: noqa: E501

from __future__ import annotations

import hashlib
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate, islice

import regex
import sqlalchemy as sa
from tqdm import tqdm

from board.db import (
    blocked_senders,
    conversation_events,
    conversations,
    messages,
    read_markers,
    users,
    utcnow,
)
from board.demo import (
    AUTHOR_STILL_STUCK,
    AUTHOR_THANKS,
    CUSTOMER_SIGNOFFS,
    DAY,
    DEMO_STAFF,
    FIRST_NAMES,
    LAST_NAMES,
    STAFF_CLOSERS,
    STAFF_SIGNOFFS,
    THEMES,
    Theme,
    _chunks,
    _email,
    _lines,
    _topic_values,
    _Values,
    _Writer,
)
from board.inbox.queries import FIRST_TICKET_NUMBER
from board.markup import SUBJECT_LENGTH, plain_text

_GRAPHEME = regex.compile(r"\X")  # as board.markup.subject_from counts characters

SPAN_DAYS = 365  # the inbox has been in use for about a year
STATUS_WEIGHTS = {"open": 12, "pending": 18, "solved": 67, "spam": 3}
INVOICE_SHARE = 0.02  # invoice notices staff sent into a customer's inbox
GUEST_SHARE = 0.03  # requests through the contact form; spam comes almost only that way
GUEST_SHARE_OF_SPAM = 0.9
UNASSIGNED_OPEN_SHARE = 0.10  # new requests nobody has taken yet
NOTE_SHARE = 0.15  # conversations with an internal note before the first answer

PRIVATE_GREETINGS = (
    "Hallo,",
    "Guten Tag,",
    "Hallo liebes Support-Team,",
    "Sehr geehrte Damen und Herren,",
)
PRIVATE_STAFF_GREETINGS = ("Hallo {name},", "Guten Tag {full},", "Hallo {full},", "Guten Tag,")
PRIVATE_CLOSERS = tuple(closer for closer in STAFF_CLOSERS if "Postfach" not in closer) + _lines("""
    Ich lasse die Anfrage noch ein paar Tage offen, falls noch etwas ist.
    Wenn Sie noch Fragen haben, antworten Sie einfach hier.
""")
ORDER_REFERENCES = _lines("""
    Es geht um meine Bestellung {order}.
    Meine Bestellnummer ist {order}.
    Die Bestellung hat die Nummer {order}.
""")
THANKS_SIGNOFFS = ("Viele Grüße\n{me}", "Gruß {me}", "Schönen Tag noch!\n{me}")
STAFF_THANKS = _lines("""
    Vielen Dank für Ihre Nachricht.
    Danke für Ihre Geduld.
    Entschuldigen Sie bitte die Umstände.
""")
# Staff ask back, per theme, and the customer answers exactly that.
ASKS = {
    "versand": (
        (
            "Könnten Sie bitte einmal bei Ihren Nachbarn nachfragen, ob das Paket dort abgegeben wurde?",
            "Bei den Nachbarn wurde leider nichts abgegeben.",
        ),
        (
            "Schicken Sie uns bitte ein Foto der Verpackung und des Schadens, dann kümmern wir uns sofort darum.",
            "Ich habe die Fotos gerade hochgeladen, der Karton ist an einer Ecke komplett eingedrückt.",
        ),
        (
            "Welche Lieferadresse sollen wir für die Ersatzlieferung verwenden?",
            "Bitte an die Adresse aus meinem Kundenkonto.",
        ),
    ),
    "ruecksendung": (
        (
            "Können Sie mir bitte die Sendungsnummer Ihrer Rücksendung nennen?",
            "Die Sendungsnummer ist `{tracking}`.",
        ),
        (
            "Möchten Sie den Betrag erstattet haben oder lieber einen Umtausch gegen den {product2}?",
            "Ich nehme lieber die Erstattung.",
        ),
    ),
    "zahlung": (
        (
            "Haben Sie die Zahlung schon angewiesen? Dann nennen Sie uns bitte kurz das Datum der Überweisung.",
            "Die Überweisung über {amount} ist am Montag rausgegangen.",
        ),
        ("Welche Zahlungsart möchten Sie stattdessen nutzen?", "Dann gern per {payment}."),
    ),
    "bestellung": (
        (
            "Bitte bestätigen Sie mir kurz, dass wir die Bestellung stornieren sollen.",
            "Ja, bitte stornieren Sie die Bestellung.",
        ),
        (
            "Sollen wir den {product2} mit in dasselbe Paket legen?",
            "Ja, gern zusammen in einem Paket.",
        ),
    ),
    "rechnung": (
        (
            "Auf welche Anschrift soll die neue Rechnung lauten?",
            "Bitte auf die Firmenanschrift, die ich im Kundenkonto hinterlegt habe.",
        ),
        (
            "Können Sie mir bitte sagen, um welche Rechnung es geht?",
            "Es ist die Rechnung zur Bestellung {order}.",
        ),
    ),
    "konto": (
        (
            "Mit welcher E-Mail-Adresse haben Sie das zweite Konto angelegt?",
            "Das zweite Konto läuft auf meine alte Adresse bei einem anderen Anbieter.",
        ),
        (
            "Kommt beim Anmelden eine Fehlermeldung, und wenn ja, welche?",
            "Es kommt nur „Anmeldung fehlgeschlagen“, sonst nichts.",
        ),
    ),
    "technik": (
        (
            "Können Sie mir bitte sagen, welche Firmware-Version die App für den {product} anzeigt?",
            "Die App zeigt die Firmware-Version `{version}` an.",
        ),
        (
            "Haben Sie den {product} schon einmal auf Werkseinstellungen zurückgesetzt?",
            "Ja, den Reset habe ich zweimal gemacht, leider ohne Erfolg.",
        ),
    ),
    "produkt": (
        (
            "Wann genau haben Sie den {product} gekauft? Das brauchen wir für die Garantie.",
            "Das war mit der Bestellung {order}, vor gut einem Jahr.",
        ),
        (
            "Wo soll der {product} montiert werden, drinnen oder draußen?",
            "Draußen im Carport, aber überdacht.",
        ),
    ),
}
NUDGES = _lines("""
    Gibt es schon etwas Neues?
    Kurze Nachfrage: Haben Sie meine Nachricht bekommen?
    Ich warte immer noch auf eine Antwort.
    Nachtrag: Das Problem besteht weiterhin.
""")
INTERNAL_NOTES = _lines("""
    Nachforschungsauftrag bei {carrier} gestellt, Antwort kommt in etwa fünf Werktagen.
    Kunde hatte letzte Woche schon angerufen, bitte zügig antworten.
    Gutschrift über {amount} ist veranlasst, die Buchhaltung weiß Bescheid.
    Gerät geht zur Prüfung an den Hersteller, Ersatz erst nach dessen Rückmeldung.
    Versandkosten wurden bei der letzten Bestellung schon einmal erstattet.
    Laut Lager ist der {product} erst in etwa {days} Tagen wieder da.
    Bitte vor dem Austausch die Seriennummer prüfen.
    Zahlung ist laut Buchhaltung am Freitag eingegangen.
""")
INVOICE_NOTICES = _lines("""
    Ihre Rechnung zur Bestellung {order} über {amount} liegt für Sie bereit.
    Anbei erhalten Sie die korrigierte Rechnung zur Bestellung {order}; die alte Rechnung ist damit storniert.
    Für Ihre Rücksendung haben wir eine Gutschrift über {amount} erstellt.
    Ihre Teilrechnung zur Bestellung {order} über {amount} ist jetzt im Kundenkonto abrufbar.
""")
INVOICE_DETAILS = _lines("""
    Sie finden alle Rechnungen auch in Ihrem Kundenkonto unter **Rechnungen**.
    Der Betrag wird über {payment} erstattet.
    Bezahlt ist die Bestellung bereits, Sie müssen nichts weiter tun.
""")
SPAM = (
    "Sehr geehrte Damen und Herren,\n\nwir bringen Ihren Shop auf Platz 1 bei Google. "
    "Antworten Sie einfach auf diese Nachricht für ein kostenloses Angebot.",
    "Günstige Kredite ohne Schufa, Auszahlung in 24 Stunden! "
    "Jetzt unverbindlich anfragen: [Kredit-Rechner](https://kredit.example/rechner)",
    "Hallo, ich biete Ihnen 10.000 Besucher pro Monat für nur 49 € an. Interesse?",
    "Ihr Konto wurde gesperrt. Bitte bestätigen Sie Ihre Daten innerhalb von 24 Stunden "
    "über [diesen Link](https://konto-pruefung.example/login).",
)


class _ConversationWriter(_Writer):
    """Message bodies for one private conversation, as lists of (markdown, html) pieces."""

    asked_for = ""  # what staff asked for last: the customer's next reply gives it

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self._plain: dict[str, str] = {}

    def subject(self, parts: list[tuple[str, str]], values: _Values) -> tuple[str, bool]:
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
        greeting = rng.choice(PRIVATE_GREETINGS) if self._maybe(0.3) else None
        sentences = [rng.choice(theme.openings)]
        if self._maybe(0.6):
            sentences.append(rng.choice(ORDER_REFERENCES))
        sentences += self._some(theme.details, 0, 2)
        parts = self._greeted(greeting, sentences)
        if theme.customer_blocks and self._maybe(0.2):
            parts.append(self.pieces.block(rng.choice(theme.customer_blocks)))
        parts.append(self.pieces.paragraph(self._some(theme.questions, 1, 2)))
        if self._maybe(0.7):
            parts.append(self.pieces.block(rng.choice(CUSTOMER_SIGNOFFS)))
        return parts

    def answer(self, theme: Theme, first: bool) -> list[tuple[str, str]]:
        rng = self.rng
        sentences = [rng.choice(STAFF_THANKS)] if first and self._maybe(0.4) else []
        sentences += self._some(theme.answers, 1, 3 if first else 2)
        parts = self._greeted(rng.choice(PRIVATE_STAFF_GREETINGS), sentences)
        if theme.staff_blocks and self._maybe(0.25 if first else 0.1):
            parts.append(self.pieces.block(rng.choice(theme.staff_blocks)))
        if self._maybe(0.6):
            parts.append(self.pieces.paragraph([rng.choice(PRIVATE_CLOSERS)]))
        parts.append(self.pieces.block(rng.choice(STAFF_SIGNOFFS)))
        return parts

    def ask(self, theme_key: str) -> list[tuple[str, str]]:
        """Staff need something from the customer; `reply(asked=True)` gives exactly that."""
        rng = self.rng
        question, self.asked_for = rng.choice(ASKS[theme_key])
        parts = self._greeted(rng.choice(PRIVATE_STAFF_GREETINGS), [question])
        parts.append(self.pieces.block(rng.choice(STAFF_SIGNOFFS)))
        return parts

    def reply(self, theme: Theme, asked: bool) -> list[tuple[str, str]]:
        rng = self.rng
        if asked:
            sentences = [self.asked_for]
        else:
            sentences = [rng.choice(AUTHOR_STILL_STUCK)]
            if self._maybe(0.5):
                sentences.append(rng.choice(theme.questions))
        parts = [self.pieces.paragraph(sentences)]
        if self._maybe(0.4):
            parts.append(self.pieces.block(rng.choice(CUSTOMER_SIGNOFFS)))
        return parts

    def thanks(self) -> list[tuple[str, str]]:
        parts = [self.pieces.paragraph([self.rng.choice(AUTHOR_THANKS)])]
        if self._maybe(0.4):
            parts.append(self.pieces.block(self.rng.choice(THANKS_SIGNOFFS)))
        return parts

    def nudge(self) -> list[tuple[str, str]]:
        return [self.pieces.paragraph([self.rng.choice(NUDGES)])]

    def note(self) -> list[tuple[str, str]]:
        return [self.pieces.paragraph([self.rng.choice(INTERNAL_NOTES)])]

    def invoice(self) -> list[tuple[str, str]]:
        rng = self.rng
        sentences = [rng.choice(INVOICE_NOTICES), *self._some(INVOICE_DETAILS, 0, 1)]
        parts = self._greeted(rng.choice(PRIVATE_STAFF_GREETINGS), sentences)
        parts.append(self.pieces.block(rng.choice(STAFF_SIGNOFFS)))
        return parts

    def spam(self) -> list[tuple[str, str]]:
        return [self.pieces.block(self.rng.choice(SPAM))]


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


class _Planner:
    def __init__(self, rng: random.Random, now: datetime, customers, staff) -> None:
        self.rng = rng
        self.now = now
        self.writer = _ConversationWriter(rng)
        self.customers = customers
        self.customer_weights = list(
            accumulate(min(25.0, rng.lognormvariate(0, 1)) for _ in customers)
        )
        self.staff = staff  # [(id, first name)]
        self.theme_keys = list(THEMES)
        self.theme_weights = [theme.weight for theme in THEMES.values()]
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
            conversation.guest_email = self._guest_email(customer.name)
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

    def _status(self) -> str:
        return self.rng.choices(tuple(STATUS_WEIGHTS), tuple(STATUS_WEIGHTS.values()))[0]

    def _guest(self) -> _Person:
        return _Person(None, f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}")

    def _guest_email(self, name: str) -> str:
        first, last = name.split(" ", 1)
        return _email(self.rng, first, last, self.taken_guest_emails)

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
        return [
            start + timedelta(seconds=round(offset), microseconds=index)
            for index, offset in enumerate(offsets)
        ]

    def _write(self, conversation: _Conversation, roles: list[str], assignee_first: str) -> None:
        rng, writer = self.rng, self.writer
        customer = conversation.customer
        first = customer.name.split(" ", 1)[0]
        if conversation.kind == "invoice":
            theme_key = "rechnung"
        else:
            theme_key = rng.choices(self.theme_keys, self.theme_weights)[0]
        theme = THEMES[theme_key]
        values = _Values(_topic_values(rng), order=str(rng.randint(2_000_000, 2_999_999)))
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
            message_values = _Values(values, me=me)
            if index == 0:
                conversation.subject = writer.subject(parts, message_values)
            body, html = writer.body(parts, message_values)
            conversation.messages.append(_Message(when, kind, author_id, body, html))

    def _colleague(self, assignee_id: int | None) -> tuple[int, str]:
        others = [member for member in self.staff if member[0] != assignee_id] or self.staff
        return self.rng.choice(others)


# --- derived columns ---------------------------------------------------------------------


def conversation_row(conversation: _Conversation) -> dict:
    """The conversation's columns, derived from its messages as board.inbox.queries does."""
    messages_ = conversation.messages
    public = [message for message in messages_ if message.role != "note"]
    from_customer = [message for message in messages_ if message.role == "customer"]
    staff_answers = [message for message in public if message.role == "staff"]
    subject, cut = conversation.subject
    waiting_since = None
    if conversation.status == "open":
        after = staff_answers[-1].time if staff_answers else None
        waiting_since = next(
            message.time for message in from_customer if after is None or message.time > after
        )
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
        "assignee_id": conversation.assignee_id,
        "created_at": messages_[0].time,
        "last_message_at": messages_[-1].time,
        "last_customer_message_at": from_customer[-1].time if from_customer else None,
        "first_response_at": staff_answers[0].time if staff_answers else None,
        "message_count": len(public),
        "last_public_message_id": public[-1].id,
        "last_public_author_id": public[-1].author_id,
        "waiting_since": waiting_since,
        "vip": customer.vip,
    }


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
        # Answers older than two days have mostly been read; newer ones wait as unread.
        if newest.time < now - timedelta(days=2) and rng.random() < 0.9:
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


# --- the bulk insert ---------------------------------------------------------------------


def add_conversations(connection: sa.Connection, seed: int, count: int) -> tuple[int, int] | None:
    """Adds `count` conversations from the customers in the database; returns the number range."""
    if count <= 0:
        return None
    now = utcnow().replace(microsecond=0)

    def next_value(column: sa.Column, floor: int = 1) -> int:
        return max(floor, (connection.execute(sa.select(sa.func.max(column))).scalar() or 0) + 1)

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
    first_number = next_value(conversations.c.number, FIRST_TICKET_NUMBER)
    rng = random.Random(f"{seed}:conversations:{first_number}")
    planner = _Planner(rng, now, customers, staff)

    progress = tqdm(total=count, desc="Demo conversations", unit=" conversations", file=sys.stderr)
    planned = []
    for index in range(count):
        planned.append(planner.plan())
        if index % 1000 == 999:
            progress.update(1000)
    progress.update(count - progress.n)

    # Ids and numbers follow time, as they would have had everything been written in order.
    planned.sort(key=lambda conversation: conversation.messages[0].time)
    conversation_id = next_value(conversations.c.id)
    for offset, conversation in enumerate(planned):
        conversation.id = conversation_id + offset
        conversation.number = first_number + offset
    message_id = next_value(messages.c.id)
    for message in sorted(
        (message for conversation in planned for message in conversation.messages),
        key=lambda message: message.time,
    ):
        message.id, message_id = message_id, message_id + 1

    rows = []
    for conversation in planned:
        rows.append(conversation_row(conversation))
        if len(rows) == 2000:
            connection.execute(conversations.insert(), rows)
            rows = []
    if rows:
        connection.execute(conversations.insert(), rows)
    message_rows = (
        {
            "id": message.id,
            "conversation_id": conversation.id,
            "author_id": message.author_id,
            "body": message.body,
            "body_html": message.html,
            "internal": message.role == "note",
            "created_at": message.time,
        }
        for conversation in planned
        for message in conversation.messages
    )
    for chunk in _chunks(list(message_rows), 5000):
        connection.execute(messages.insert(), chunk)
    event_rows = [
        row for conversation in planned for row in _events(conversation, staff_names, now)
    ]
    for chunk in _chunks(event_rows, 5000):
        connection.execute(conversation_events.insert(), chunk)
    marker_rows = [row for conversation in planned for row in _markers(conversation, now, rng)]
    for chunk in _chunks(marker_rows, 5000):
        connection.execute(read_markers.insert(), chunk)
    _block_spam_guests(connection, planned, now)
    progress.close()
    return first_number, first_number + count - 1


def _block_spam_guests(
    connection: sa.Connection, planned: list[_Conversation], now: datetime
) -> None:
    """Marking a guest's message as spam blocks the address, as board.inbox.workflow does."""
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
    if rows:
        connection.execute(blocked_senders.insert(), rows)
