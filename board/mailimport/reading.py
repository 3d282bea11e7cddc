"""Reading old mail: mbox, Maildir and .eml files to `ParsedMail` values, no database."""

from __future__ import annotations

import hashlib
import mailbox
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

import regex

from board.db import (
    utcnow,
)

MAILDIR_FOLDERS = ("cur", "new", "tmp")
MESSAGE_ID_MAX = 998  # mail_imports.message_id_header; longer ones are not valid anyway
NAME_MAX = 120  # users.name
# Parts that sign a mail rather than carry anything a person attached.
SIGNATURE_TYPES = frozenset(
    {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
)


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
