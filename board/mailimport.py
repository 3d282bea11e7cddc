"""Importing old support mail (mbox, Maildir, a folder of .eml) into conversations.

Shops that move here from plain email support bring their history along. Reading is kept
apart from writing: the first half of this module turns files into `ParsedMail` values
and knows nothing of the database; the second half threads those into conversations, one
short write transaction per mail, so a running server on the same SQLite file keeps
answering. Every imported mail is recorded in `mail_imports`, which makes a second run
over the same files a no-op and lets replies in later runs find their thread.
"""

from __future__ import annotations

import hashlib
import io
import mailbox
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

import regex
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from tqdm import tqdm

from board.accounts.queries import FIRST_CUSTOMER_NUMBER
from board.config import Settings
from board.db import (
    attachments,
    conversation_events,
    conversations,
    mail_imports,
    messages,
    read_markers,
    users,
    utcnow,
)
from board.i18n import gettext as _
from board.i18n import speaking
from board.inbox.queries import FIRST_TICKET_NUMBER
from board.inbox.workflow import STAFF_ROLES
from board.markup import render_markdown, subject_from
from board.security import hash_password
from board.uploads import MIB, StoredFile, UploadRejected, store_upload

MAILDIR_FOLDERS = ("cur", "new", "tmp")
MESSAGE_ID_MAX = 998  # mail_imports.message_id_header; longer ones are not valid anyway
NAME_MAX = 120  # users.name
# Parts that sign a mail rather than carry anything a person attached.
SIGNATURE_TYPES = frozenset(
    {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
)

# -------------------------------------------------------------------------------------------
# Reading: files to parsed mail
# -------------------------------------------------------------------------------------------


class NotAMailSource(Exception):
    """PATH is none of the formats the import reads; the message says what was expected."""


@dataclass(frozen=True)
class RawMail:
    label: str  # where it came from, for the command's output
    # The mail's bytes and the time its container knows (mbox From_ line, file mtime). Read
    # on demand: the whole archive never sits in memory.
    load: Callable[[], tuple[bytes, datetime | None]]


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes


@dataclass(frozen=True)
class ParsedMail:
    source_hash: str  # sha256 of the Message-ID, or of the raw bytes when it has none
    message_id: str | None  # "<id@host>"
    references: tuple[str, ...]  # In-Reply-To first, then References, nearest parent first
    subject_key: str  # normalised, for threading mail without usable headers
    sender: tuple[str, str]  # (display name, lower-cased address)
    recipients: tuple[tuple[str, str], ...]  # the To addresses, in order
    date: datetime  # naive UTC
    body: str
    attachments: tuple[Attachment, ...]


def detect_source(path: Path) -> str:
    """Which format `path` holds: mbox, maildir or eml; NotAMailSource for anything else."""
    if not path.exists():
        raise NotAMailSource(f"{path} does not exist.")
    if path.is_file():
        with path.open("rb") as handle:
            if handle.read(5) == b"From ":
                return "mbox"
        raise NotAMailSource(f'{path} is not an mbox file: it does not start with a "From " line.')
    if path.is_dir():
        if all((path / folder).is_dir() for folder in MAILDIR_FOLDERS):
            return "maildir"
        if _eml_files(path):
            return "eml"
    raise NotAMailSource(
        f"{path} is neither an mbox file, a Maildir (with cur/, new/ and tmp/) "
        "nor a folder of .eml files."
    )


@contextmanager
def open_source(path: Path) -> Iterator[list[RawMail]]:
    """The mails at `path`, each to be loaded when needed; the mbox stays open until the end."""
    kind = detect_source(path)
    if kind == "mbox":
        box = mailbox.mbox(path, create=False)
        try:
            yield [
                RawMail(f"{path.name}, mail {number}", _mbox_loader(box, key))
                for number, key in enumerate(box.keys(), start=1)
            ]
        finally:
            box.close()
        return
    if kind == "maildir":
        # New mail is delivered to new/ and moved to cur/ once seen; tmp/ is half-written.
        files = [
            file
            for folder in ("cur", "new")
            for file in sorted((path / folder).iterdir())
            if file.is_file() and not file.name.startswith(".")
        ]
    else:
        files = _eml_files(path)
    yield [RawMail(f"{path.name}/{file.relative_to(path)}", _file_loader(file)) for file in files]


def _eml_files(folder: Path) -> list[Path]:
    return sorted(
        file for file in folder.iterdir() if file.is_file() and file.suffix.lower() == ".eml"
    )


def _mbox_loader(box: mailbox.mbox, key: str) -> Callable[[], tuple[bytes, datetime | None]]:
    def load() -> tuple[bytes, datetime | None]:
        from_line, _newline, data = box.get_bytes(key, from_=True).partition(b"\n")
        return data, _from_line_time(from_line.decode("latin-1"))

    return load


def _file_loader(file: Path) -> Callable[[], tuple[bytes, datetime | None]]:
    def load() -> tuple[bytes, datetime | None]:
        received = datetime.fromtimestamp(file.stat().st_mtime, UTC).replace(tzinfo=None)
        return file.read_bytes(), received

    return load


def _from_line_time(line: str) -> datetime | None:
    """The delivery time of "From sender Mon Mar  4 08:15:00 2024" (UTC by convention)."""
    words = line.split()
    for candidate in (words[-5:], words[-6:-1]):  # some writers append a zone
        try:
            return datetime.strptime(" ".join(candidate), "%a %b %d %H:%M:%S %Y")
        except ValueError:
            continue
    return None


def read_date(data: bytes, received: datetime | None) -> datetime:
    """The mail's date from its headers alone: enough to sort an archive before importing."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(data)
    return _mail_date(headers, received)


def parse_mail(data: bytes, received: datetime | None = None) -> ParsedMail:
    message = BytesParser(policy=policy.default).parsebytes(data)
    message_id = next(iter(_message_ids(_header(message, "Message-ID"))), None)
    if message_id is not None and len(message_id) > MESSAGE_ID_MAX:
        message_id = None
    references = _message_ids(_header(message, "In-Reply-To"))
    references += reversed(_message_ids(_header(message, "References")))
    body_part = _body_part(message)
    body = _body_text(body_part) if body_part is not None else ""
    senders = _addresses(message, "From")
    return ParsedMail(
        source_hash=hashlib.sha256(message_id.encode() if message_id else data).hexdigest(),
        message_id=message_id,
        references=tuple(dict.fromkeys(ref for ref in references if ref != message_id)),
        subject_key=subject_key(_header(message, "Subject")),
        sender=senders[0] if senders else ("", ""),
        recipients=tuple(_addresses(message, "To")),
        date=_mail_date(message, received),
        # A mail with nothing but attachments still needs words for the conversation's
        # subject: its Subject header stands in.
        body=body or _header(message, "Subject"),
        attachments=tuple(_attachments(message, body_part)),
    )


_REPLY_PREFIX = regex.compile(r"(?i)^\s*(?:(?:re|aw|antw|fwd?|wg)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+")


def subject_key(subject: str) -> str:
    """The subject without reply and forward prefixes, case and spacing: "AW: Re:  Frage"
    and "frage" belong to the same thread."""
    return " ".join(_REPLY_PREFIX.sub("", subject).casefold().split())


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # the header parser fails in many ways on hostile headers
        value = _raw_header(message, name)
    text = _unescaped(str(value or ""))
    if "\ufffd" in text:  # raw 8-bit bytes the parser gave up on: read them ourselves
        text = " ".join(_decoded_words(_unescaped(_raw_header(message, name))).split())
    return text.strip()


def _raw_header(message: EmailMessage, name: str) -> str:
    return next((raw for key, raw in message.raw_items() if key.lower() == name.lower()), "")


def _unescaped(text: str) -> str:
    """Headers with raw 8-bit bytes arrive with the bytes as surrogates, which no database
    stores: they were UTF-8, or in old mail mostly Windows-1252."""
    if not any("\udc80" <= char <= "\udcff" for char in text):
        return text
    return _decoded(text.encode("utf-8", errors="surrogateescape"))


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _addresses(message: EmailMessage, name: str) -> list[tuple[str, str]]:
    try:
        header = message.get(name)
        found = [] if header is None else [(a.display_name, a.addr_spec) for a in header.addresses]
    except Exception:  # as above: read it the old, forgiving way
        raw = _raw_header(message, name)
        found = [(_decoded_words(display), address) for display, address in getaddresses([raw])]
    return [
        (" ".join(_unescaped(display).split()), _unescaped(address).lower())
        for display, address in found
        if address
    ]


def _decoded_words(text: str) -> str:
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


_MESSAGE_ID = regex.compile(r"<([^<>\s]+)>")


def _message_ids(value: str) -> list[str]:
    found = _MESSAGE_ID.findall(value)
    if not found and "@" in value and len(value.split()) == 1:
        found = [value.strip("<>")]  # some mailers leave out the angle brackets
    return [f"<{message_id}>" for message_id in found]


def _mail_date(message: EmailMessage, received: datetime | None) -> datetime:
    """The Date header in naive UTC, else when the mail arrived, else now."""
    value = _header(message, "Date")
    try:
        moment = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        moment = None
    if moment is None:
        return received or utcnow()
    if moment.tzinfo is not None:  # "-0000" means "zone unknown" and parses naive: UTC
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _body_part(message: EmailMessage) -> EmailMessage | None:
    try:
        return message.get_body(preferencelist=("plain", "html"))
    except Exception:
        return None


def _body_text(part: EmailMessage) -> str:
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset
        text = _decoded(part.get_payload(decode=True) or b"")
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    # NUL cannot be stored in PostgreSQL text; CRLF is the wire format, not the text's.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.strip()


def _attachments(message: EmailMessage, body_part: EmailMessage | None) -> Iterator[Attachment]:
    """Every part that is a file: named parts, non-text parts, forwarded mails (as .eml)."""
    parts = [message]
    while parts:
        part = parts.pop(0)
        content_type = part.get_content_type()
        if part is body_part:
            continue
        if part.is_multipart() and content_type != "message/rfc822":
            parts[:0] = part.get_payload()
            continue
        if content_type in SIGNATURE_TYPES:
            continue
        try:
            filename = _unescaped(part.get_filename() or "")
        except Exception:
            filename = ""
        named = bool(filename) or part.get_content_disposition() == "attachment"
        if part.get_content_maintype() == "text" and not named:
            continue  # the HTML twin of the text body, and similar alternatives
        if content_type == "message/rfc822":
            inner = part.get_payload()[0]
            data = inner.as_bytes()
            filename = filename or f"{_header(inner, 'Subject') or 'mail'}.eml"
        else:
            data = part.get_payload(decode=True) or b""
        yield Attachment(filename, data)


_WHITESPACE = regex.compile(r"\s+")


class _TextFromHtml(HTMLParser):
    """Readable text from an HTML-only mail: paragraphs, line breaks, list items, link targets."""

    SKIPPED = frozenset({"head", "script", "style", "title", "template"})
    BLOCKS = frozenset(
        "address article blockquote div dl dt dd footer h1 h2 h3 h4 h5 h6 header hr ol p pre "
        "section table tr ul".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.skipping = 0
        self.preformatted = 0
        self.links: list[tuple[str, int]] = []  # (href, where its text starts in pieces)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.pieces.append("\n")
        elif tag == "li":
            self.pieces.append("\n- ")
        elif tag in ("td", "th"):
            self.pieces.append(" ")
        elif tag in self.BLOCKS:
            self.pieces.append("\n\n")
        if tag == "pre":
            self.preformatted += 1
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.pieces)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.pieces.append("\n\n")
        if tag == "pre":
            self.preformatted = max(0, self.preformatted - 1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            # "hier klicken" means nothing without where it pointed.
            if href.startswith(("http://", "https://")) and href not in "".join(
                self.pieces[start:]
            ):
                self.pieces.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        # Outside <pre>, a line break in the source is just a space, as the browser shows it.
        self.pieces.append(data if self.preformatted else _WHITESPACE.sub(" ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.pieces).split("\n")]
        return regex.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


# -------------------------------------------------------------------------------------------
# Writing: parsed mail to conversations
# -------------------------------------------------------------------------------------------


class MailProblem(Exception):
    """A mail that cannot become a message; reported by the command, the import goes on."""


@dataclass
class ImportReport:
    imported: int = 0
    already_there: int = 0
    new_conversations: int = 0
    new_customers: int = 0
    skipped_attachments: list[str] = field(default_factory=list)  # "where: why"
    failed: list[str] = field(default_factory=list)  # "where: why"


@dataclass
class _Run:
    """What every mail of one import needs to know, and what the run has threaded so far."""

    settings: Settings
    engine: sa.Engine
    shop_addresses: set[str]
    staff_by_email: dict[str, int]
    fallback_author_id: int
    unusable_password_hash: str
    report: ImportReport
    # Threads in this run by (customer, subject), and by the Message-IDs that imported mail
    # referred to: a reply dated before its parent (a wrong clock) still finds its thread.
    by_subject: dict[tuple[int, str], int] = field(default_factory=dict)
    referenced_by: dict[str, int] = field(default_factory=dict)


def import_mail(settings: Settings, engine: sa.Engine, paths: Sequence[Path]) -> ImportReport:
    """Imports every mail at `paths` in date order; raises NotAMailSource before writing.

    Several paths are one import: an inbox and its sent folder interleave by date, so the
    shop's answers sit between the customer's mails they answer.
    """
    report = ImportReport()
    with speaking(settings.locale), ExitStack() as sources:
        raw_mails = [raw for path in paths for raw in sources.enter_context(open_source(path))]
        run = _start_run(settings, engine, report)
        dated = []
        for position, raw in enumerate(tqdm(raw_mails, **_progress("Reading mail"))):
            try:
                dated.append((read_date(*raw.load()), position, raw))
            except Exception as error:  # an unreadable file must not stop the archive
                _fail(report, raw, error)
        dated.sort(key=lambda item: item[:2])
        for _date, _position, raw in tqdm(dated, **_progress("Importing mail")):
            try:
                _import_one(run, raw)
            except Exception as error:
                _fail(report, raw, error)
    return report


def _progress(description: str) -> dict:
    return {"desc": description, "unit": " mails", "file": sys.stderr, "leave": False}


def _fail(report: ImportReport, raw: RawMail, error: Exception) -> None:
    reason = str(error) if isinstance(error, MailProblem) else f"{type(error).__name__}: {error}"
    report.failed.append(f"{raw.label}: {reason}")
    tqdm.write(f"Not imported: {raw.label}: {reason}", file=sys.stderr)


def _start_run(settings: Settings, engine: sa.Engine, report: ImportReport) -> _Run:
    with engine.connect() as connection:
        staff = connection.execute(
            sa.select(users.c.id, users.c.email, users.c.role)
            .where(users.c.role.in_(STAFF_ROLES))
            .order_by(users.c.id)
        ).all()
    if not staff:
        raise RuntimeError("no staff account to author the shop's answers: run `board init`")
    staff_by_email = {row.email: row.id for row in staff}
    admins = [row.id for row in staff if row.role == "admin"]
    shop_address = parseaddr(settings.mail_from)[1].lower()
    return _Run(
        settings=settings,
        engine=engine,
        shop_addresses={shop_address, *staff_by_email} - {""},
        staff_by_email=staff_by_email,
        fallback_author_id=(admins or [staff[0].id])[0],
        # A hash of a secret nobody keeps: any password is wrong, verify_password stays
        # quiet (an empty or marker value would make passlib raise), and imported customers
        # get in by the one-time code or a password reset. One per run, because argon2
        # takes a fifth of a second per hash and an archive may hold thousands of senders.
        unusable_password_hash=hash_password(secrets.token_urlsafe(32)),
        report=report,
    )


def _import_one(run: _Run, raw: RawMail) -> None:
    mail = parse_mail(*raw.load())
    with run.engine.connect() as connection:
        if _already_imported(connection, mail.source_hash):
            run.report.already_there += 1
            return
    files, problems = _store_attachments(run.settings, mail.attachments)
    if not mail.body and not files and not problems:
        raise MailProblem("the mail has neither text nor attachments")
    body = _with_problems(mail.body, problems)
    counted = (run.report.new_conversations, run.report.new_customers)
    try:
        with write_transaction(run.engine) as connection:
            if _already_imported(connection, mail.source_hash):  # another run was quicker
                run.report.already_there += 1
                return
            conversation_id, customer_id = _write_mail(connection, run, mail, body, files)
    except BaseException:
        run.report.new_conversations, run.report.new_customers = counted  # rolled back
        raise
    run.report.imported += 1
    for problem in problems:
        run.report.skipped_attachments.append(f"{raw.label}: {problem}")
        tqdm.write(f"Attachment skipped: {raw.label}: {problem}")
    if customer_id is not None and mail.subject_key:
        run.by_subject.setdefault((customer_id, mail.subject_key), conversation_id)
    for reference in mail.references:
        run.referenced_by.setdefault(reference, conversation_id)


def _with_problems(body: str, problems: list[str]) -> str:
    """The reader learns which files the mail had that the conversation does not show: the
    upload check's reasons, already translated, each naming its file."""
    if not problems:
        return body
    listed = "\n".join(f"- {problem}" for problem in problems)
    return f"{body}\n\n**{_('Attachments')}:**\n{listed}".strip()


def _already_imported(connection: sa.Connection, source_hash: str) -> bool:
    found = connection.execute(
        sa.select(mail_imports.c.source_hash).where(mail_imports.c.source_hash == source_hash)
    )
    return found.first() is not None


def _store_attachments(
    settings: Settings, files: tuple[Attachment, ...]
) -> tuple[list[StoredFile], list[str]]:
    """Stored like uploads (checked by content, kept by hash), and why the others were not."""
    stored, problems = [], []
    for file in files:
        try:
            stored.append(
                store_upload(
                    io.BytesIO(file.data),
                    file.filename,
                    settings.data_dir,
                    settings.upload_types,
                    settings.upload_max_mb * MIB,
                )
            )
        except UploadRejected as rejected:
            problems.append(rejected.message)
    return stored, problems


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that takes SQLite's write lock up front, as board.db.write_transaction.

    pysqlite begins a deferred transaction at the first write; when the running server
    writes in between, that fails with "database is locked". BEGIN IMMEDIATE waits for
    the lock (busy_timeout) instead.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def _write_mail(
    connection: sa.Connection, run: _Run, mail: ParsedMail, body: str, files: list[StoredFile]
) -> tuple[int, int | None]:
    """The mail as a message in its conversation; returns the conversation and its customer."""
    from_shop = mail.sender[1] in run.shop_addresses
    author_id = _author_id(connection, run, mail, from_shop)
    conversation_id, is_new = _thread_for(connection, run, mail, body, from_shop, author_id)
    message_id = _insert_message(connection, conversation_id, author_id, body, files, mail.date)
    connection.execute(
        mail_imports.insert().values(
            source_hash=mail.source_hash,
            message_id_header=mail.message_id,
            conversation_id=conversation_id,
            message_id=message_id,
            imported_at=utcnow(),
        )
    )
    customer_id = _refresh_conversation(
        connection, conversation_id, message_id, author_id if from_shop else None, is_new
    )
    if customer_id is not None:
        _mark_read(connection, customer_id, conversation_id)
    return conversation_id, customer_id


def _thread_for(
    connection: sa.Connection,
    run: _Run,
    mail: ParsedMail,
    body: str,
    from_shop: bool,
    author_id: int,
) -> tuple[int, bool]:
    """The conversation the mail belongs to, and whether it was opened for it: by the
    headers first, then by the subject with the same customer, else a new one."""
    conversation_id = _thread_by_headers(connection, run, mail)
    if conversation_id is not None:
        return conversation_id, False
    customer_id = _recipient_customer_id(connection, run, mail) if from_shop else author_id
    conversation_id = run.by_subject.get((customer_id, mail.subject_key))
    if conversation_id is not None:
        return conversation_id, False
    run.report.new_conversations += 1
    return _new_conversation(connection, customer_id, body, mail.date), True


def _author_id(connection: sa.Connection, run: _Run, mail: ParsedMail, from_shop: bool) -> int:
    """The staff member who wrote it (or the first admin for the shop's address), or the
    customer whose address sent it."""
    name, address = mail.sender
    if from_shop:
        return run.staff_by_email.get(address, run.fallback_author_id)
    if not address:
        raise MailProblem("the mail has no sender address")
    return _customer_id(connection, run, name, address)


def _recipient_customer_id(connection: sa.Connection, run: _Run, mail: ParsedMail) -> int:
    """For the shop's own mail: the customer it went to, the first To address that is not
    the shop's."""
    for name, address in mail.recipients:
        if address not in run.shop_addresses:
            return _customer_id(connection, run, name, address)
    raise MailProblem("the shop's mail went to no customer (no To address outside the shop)")


def _customer_id(connection: sa.Connection, run: _Run, name: str, address: str) -> int:
    """The account with this address, or a new customer account without a usable password."""
    if "@" not in address or len(address) > 320 or any(char.isspace() for char in address):
        raise MailProblem(f"{address!r} is not a usable email address")
    found = connection.execute(
        sa.select(users.c.id, users.c.role).where(users.c.email == address)
    ).first()
    if found is not None:
        if found.role in STAFF_ROLES:
            raise MailProblem(f"mail between shop addresses ({address})")
        return found.id
    highest = connection.execute(sa.select(sa.func.max(users.c.customer_number))).scalar()
    run.report.new_customers += 1
    return connection.execute(
        users.insert()
        .values(
            customer_number=max(FIRST_CUSTOMER_NUMBER, (highest or 0) + 1),
            email=address,
            name=(name or address.split("@", 1)[0])[:NAME_MAX],
            role="customer",
            password_hash=run.unusable_password_hash,
            created_at=utcnow(),
        )
        .returning(users.c.id)
    ).scalar_one()


def _thread_by_headers(connection: sa.Connection, run: _Run, mail: ParsedMail) -> int | None:
    """The conversation of any mail this one refers to, imported in this run or before, or
    of an imported mail that referred to this one."""
    if mail.references:
        found = dict(
            connection.execute(
                sa.select(mail_imports.c.message_id_header, mail_imports.c.conversation_id).where(
                    mail_imports.c.message_id_header.in_(mail.references)
                )
            ).all()
        )
        for reference in mail.references:
            if reference in found:
                return found[reference]
    if mail.message_id is not None:
        return run.referenced_by.get(mail.message_id)
    return None


def _new_conversation(
    connection: sa.Connection, customer_id: int, body: str, when: datetime
) -> int:
    highest = connection.execute(sa.select(sa.func.max(conversations.c.number))).scalar()
    subject, cut = subject_from(body)
    vip = connection.execute(sa.select(users.c.vip).where(users.c.id == customer_id)).scalar()
    return connection.execute(
        conversations.insert()
        .values(
            number=max(FIRST_TICKET_NUMBER, (highest or 0) + 1),
            kind="support",
            subject=subject,
            subject_cut=cut,
            status="open",  # set from the messages by _refresh_conversation
            customer_id=customer_id,
            vip=vip,
            created_at=when,
            last_message_at=when,
        )
        .returning(conversations.c.id)
    ).scalar_one()


def _insert_message(
    connection: sa.Connection,
    conversation_id: int,
    author_id: int,
    body: str,
    files: list[StoredFile],
    when: datetime,
) -> int:
    message_id = connection.execute(
        messages.insert()
        .values(
            conversation_id=conversation_id,
            author_id=author_id,
            body=body,
            body_html=render_markdown(body),
            internal=False,
            created_at=when,
        )
        .returning(messages.c.id)
    ).scalar_one()
    for file in files:
        connection.execute(
            attachments.insert().values(
                message_id=message_id,
                conversation_id=conversation_id,
                filename=file.filename,
                content_type=file.content_type,
                size=file.size,
                sha256=file.sha256,
                created_at=when,
            )
        )
    return message_id


@dataclass(frozen=True)
class Said:
    """One message as the derived columns see it."""

    id: int
    author_id: int | None
    from_staff: bool
    internal: bool
    at: datetime


def conversation_columns(
    history: list[Said], status: str, assignee_id: int | None, added_id: int
) -> dict:
    """The derived columns from all messages, as board.inbox.queries keeps them one by one.

    Computed from the whole history rather than step by step, because a later run may
    bring a mail older than what the conversation holds. The status follows the newest
    message ("solved" when the shop wrote last, else "open") only when that is the mail
    just added: an old mail arriving late does not undo what happened since.
    """
    history = sorted(history, key=lambda said: (said.at, said.id))
    public = [said for said in history if not said.internal]
    newest = public[-1]
    if newest.id == added_id:
        status = "solved" if newest.from_staff else "open"
    answers = [said for said in public if said.from_staff]
    from_customer = [said for said in public if not said.from_staff]
    last_answer = max((index for index, said in enumerate(public) if said.from_staff), default=-1)
    waiting = [said.at for said in public[last_answer + 1 :] if not said.from_staff]
    return {
        "status": status,
        "created_at": history[0].at,
        "last_message_at": history[-1].at,
        "last_customer_message_at": from_customer[-1].at if from_customer else None,
        "first_response_at": answers[0].at if answers else None,
        "message_count": len(public),
        "last_public_message_id": newest.id,
        "last_public_author_id": newest.author_id,
        # An open conversation always has one (the queue sorts by it), as workflow keeps it.
        "waiting_since": (waiting[0] if waiting else newest.at) if status == "open" else None,
        # The first staff member to answer looks after it, unless somebody already does.
        "assignee_id": assignee_id
        if assignee_id is not None
        else next((said.author_id for said in answers), None),
    }


def _refresh_conversation(
    connection: sa.Connection,
    conversation_id: int,
    message_id: int,
    staff_author_id: int | None,
    is_new: bool,
) -> int | None:
    """Brings the derived columns up to date; returns the conversation's customer."""
    current = connection.execute(
        sa.select(
            conversations.c.status, conversations.c.assignee_id, conversations.c.customer_id
        ).where(conversations.c.id == conversation_id)
    ).one()
    history = [
        Said(row.id, row.author_id, row.role in STAFF_ROLES, row.internal, row.created_at)
        for row in connection.execute(
            sa.select(
                messages.c.id,
                messages.c.author_id,
                messages.c.internal,
                messages.c.created_at,
                users.c.role,
            )
            .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id))
            .where(messages.c.conversation_id == conversation_id)
        )
    ]
    columns = conversation_columns(history, current.status, current.assignee_id, message_id)
    connection.execute(
        conversations.update().where(conversations.c.id == conversation_id).values(**columns)
    )
    # A new conversation starts where its first mail puts it, as one that staff open does;
    # later changes go into the status history, dated like the mail that made them.
    if not is_new and columns["status"] != current.status:
        added = next(said for said in history if said.id == message_id)
        connection.execute(
            conversation_events.insert().values(
                conversation_id=conversation_id,
                actor_id=staff_author_id,
                action="status",
                old_value=current.status,
                new_value=columns["status"],
                note="",
                created_at=added.at,
            )
        )
    return current.customer_id


def _mark_read(connection: sa.Connection, user_id: int, conversation_id: int) -> None:
    """Old mail is not news: the customer has read everything the conversation holds."""
    newest = connection.execute(
        sa.select(sa.func.max(messages.c.id)).where(
            messages.c.conversation_id == conversation_id, messages.c.internal.is_(False)
        )
    ).scalar_one()
    is_postgresql = connection.dialect.name == "postgresql"
    insert = postgresql.insert if is_postgresql else sqlite.insert
    greatest = sa.func.greatest if is_postgresql else sa.func.max
    statement = insert(read_markers).values(
        user_id=user_id,
        conversation_id=conversation_id,
        last_read_message_id=newest,
        read_at=utcnow(),
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[read_markers.c.user_id, read_markers.c.conversation_id],
            set_={
                "last_read_message_id": greatest(
                    read_markers.c.last_read_message_id, statement.excluded.last_read_message_id
                ),
                "read_at": statement.excluded.read_at,
            },
        )
    )


def summary(report: ImportReport) -> str:
    lines = [
        ("Mail imported", report.imported),
        ("Already there", report.already_there),
        ("New conversations", report.new_conversations),
        ("New customers", report.new_customers),
        ("Skipped attachments", len(report.skipped_attachments)),
        ("Failed mails", len(report.failed)),
    ]
    return "\n".join(f"{label + ':':<21}{count}" for label, count in lines)
