"""Writing parsed mail into conversations: threads, customers, files, one transaction each."""

from __future__ import annotations

import io
import secrets
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path

import sqlalchemy as sa
from databases import Database
from tqdm import tqdm

from board.accounts.queries import FIRST_CUSTOMER_NUMBER
from board.config import Settings
from board.conversations import writing
from board.db import (
    conversations,
    mail_imports,
    one_at_a_time,
    users,
    utcnow,
    write_transaction,
)
from board.i18n import gettext as _
from board.i18n import speaking
from board.mailimport.reading import (
    NAME_MAX,
    Attachment,
    ParsedMail,
    RawMail,
    open_source,
    parse_mail,
    read_date,
)
from board.security import STAFF_ROLES, hash_password
from board.uploads import MIB, StoredFile, UploadRejected, check_upload, discard


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
    db: Database
    shop_addresses: set[str]
    staff_by_email: dict[str, int]
    fallback_author_id: int
    unusable_password_hash: str
    report: ImportReport
    # Threads in this run by (customer, subject), and by the Message-IDs that imported mail
    # referred to: a reply dated before its parent (a wrong clock) still finds its thread.
    by_subject: dict[tuple[int, str], int] = field(default_factory=dict)
    referenced_by: dict[str, int] = field(default_factory=dict)


async def import_mail(settings: Settings, db: Database, paths: Sequence[Path]) -> ImportReport:
    """Imports every mail at `paths` in date order; raises NotAMailSource before writing.

    Several paths are one import: an inbox and its sent folder interleave by date, so the
    shop's answers sit between the customer's mails they answer.
    """
    report = ImportReport()
    with speaking(settings.locale), ExitStack() as sources:
        raw_mails = [raw for path in paths for raw in sources.enter_context(open_source(path))]
        run = await _start_run(settings, db, report)
        dated = []
        for position, raw in enumerate(tqdm(raw_mails, **_progress("Reading mail"))):
            try:
                dated.append((read_date(*raw.load()), position, raw))
            except Exception as error:  # an unreadable file must not stop the archive
                _fail(report, raw, error)
        dated.sort(key=lambda item: item[:2])
        for _date, _position, raw in tqdm(dated, **_progress("Importing mail")):
            try:
                await _import_one(run, raw)
            except Exception as error:
                _fail(report, raw, error)
    return report


def _progress(description: str) -> dict:
    return {"desc": description, "unit": " mails", "file": sys.stderr, "leave": False}


def _fail(report: ImportReport, raw: RawMail, error: Exception) -> None:
    reason = str(error) if isinstance(error, MailProblem) else f"{type(error).__name__}: {error}"
    report.failed.append(f"{raw.label}: {reason}")
    tqdm.write(f"Not imported: {raw.label}: {reason}", file=sys.stderr)


async def _start_run(settings: Settings, db: Database, report: ImportReport) -> _Run:
    staff = await db.fetch_all(
        sa.select(users.c.id, users.c.email, users.c.role)
        .where(users.c.role.in_(STAFF_ROLES))
        .order_by(users.c.id)
    )
    if not staff:
        raise RuntimeError("no staff account to author the shop's answers: run `board init`")
    staff_by_email = {row.email: row.id for row in staff}
    admins = [row.id for row in staff if row.role == "admin"]
    shop_address = parseaddr(settings.mail_from)[1].lower()
    return _Run(
        settings=settings,
        db=db,
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


async def _import_one(run: _Run, raw: RawMail) -> None:
    mail = parse_mail(*raw.load())
    if await _already_imported(run.db, mail.source_hash):
        run.report.already_there += 1
        return
    files, problems = _check_attachments(run.settings, mail.attachments)
    if not mail.body and not files and not problems:
        raise MailProblem("the mail has neither text nor attachments")
    body = _with_problems(mail.body, problems)
    counted = (run.report.new_conversations, run.report.new_customers)
    try:
        async with write_transaction(run.db):
            if await _already_imported(run.db, mail.source_hash):  # another run was quicker
                run.report.already_there += 1
                return
            conversation_id, customer_id = await _write_mail(run, mail, body, files)
    except BaseException:
        run.report.new_conversations, run.report.new_customers = counted  # rolled back
        raise
    finally:
        discard(files)  # what the transaction did not keep
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


async def _already_imported(db: Database, source_hash: str) -> bool:
    found = await db.fetch_val(
        sa.select(mail_imports.c.source_hash).where(mail_imports.c.source_hash == source_hash)
    )
    return found is not None


def _check_attachments(
    settings: Settings, files: tuple[Attachment, ...]
) -> tuple[list[StoredFile], list[str]]:
    """Checked like uploads (by content), and why the others were not; the service keeps
    them in the transaction that writes their rows."""
    stored, problems = [], []
    for file in files:
        try:
            stored.append(
                check_upload(
                    io.BytesIO(file.data),
                    file.filename,
                    settings.upload_dir,
                    settings.upload_types,
                    settings.upload_max_mb * MIB,
                )
            )
        except UploadRejected as rejected:
            problems.append(rejected.message)
    return stored, problems


async def _write_mail(
    run: _Run, mail: ParsedMail, body: str, files: list[StoredFile]
) -> tuple[int, int | None]:
    """The mail as a message in its conversation; returns the conversation and its customer."""
    from_shop = mail.sender[1] in run.shop_addresses
    author_id = await _author_id(run, mail, from_shop)
    customer_id = await _recipient_customer_id(run, mail) if from_shop else author_id
    conversation_id = await _thread_for(run, mail, customer_id)
    is_new = conversation_id is None
    if is_new:
        run.report.new_conversations += 1
        conversation_id = await writing.open_imported(run.db, customer_id, body, mail.date)
    source = {"source_hash": mail.source_hash, "message_id_header": mail.message_id}
    await writing.add_imported(
        run.db, conversation_id, author_id, from_shop, body, files, mail.date, source, is_new
    )
    return conversation_id, customer_id


async def _thread_for(run: _Run, mail: ParsedMail, customer_id: int) -> int | None:
    """The conversation the mail belongs to, by the headers first, then by the subject,
    both only among the same customer's; None for a new one."""
    conversation_id = await _thread_by_headers(run, mail, customer_id)
    if conversation_id is not None:
        return conversation_id
    return run.by_subject.get((customer_id, mail.subject_key))


async def _author_id(run: _Run, mail: ParsedMail, from_shop: bool) -> int:
    """The staff member who wrote it (or the first admin for the shop's address), or the
    customer whose address sent it."""
    name, address = mail.sender
    if from_shop:
        return run.staff_by_email.get(address, run.fallback_author_id)
    if not address:
        raise MailProblem("the mail has no sender address")
    return await _customer_id(run, name, address)


async def _recipient_customer_id(run: _Run, mail: ParsedMail) -> int:
    """For the shop's own mail: the customer it went to, the first To address that is not
    the shop's."""
    for name, address in mail.recipients:
        if address not in run.shop_addresses:
            return await _customer_id(run, name, address)
    raise MailProblem("the shop's mail went to no customer (no To address outside the shop)")


async def _customer_id(run: _Run, name: str, address: str) -> int:
    """The account with this address, or a new customer account without a usable password."""
    if "@" not in address or len(address) > 320 or any(char.isspace() for char in address):
        raise MailProblem(f"{address!r} is not a usable email address")
    found = await run.db.fetch_one(
        sa.select(users.c.id, users.c.role).where(users.c.email == address)
    )
    if found is not None:
        if found.role in STAFF_ROLES:
            raise MailProblem(f"mail between shop addresses ({address})")
        return found.id
    await one_at_a_time(run.db, "customer numbers")
    highest = await run.db.fetch_val(sa.select(sa.func.max(users.c.customer_number)))
    run.report.new_customers += 1
    return await run.db.fetch_val(
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
    )


async def _thread_by_headers(run: _Run, mail: ParsedMail, customer_id: int) -> int | None:
    """The conversation of any mail this one refers to, imported in this run or before, or
    of an imported mail that referred to this one; only a conversation of `customer_id`.
    A mail that refers into another customer's thread (a forward, a CC) opens its own:
    it must not put its sender's text and files in front of someone else."""
    candidates = []
    if mail.references:
        found = {
            row.message_id_header: row.conversation_id
            for row in await run.db.fetch_all(
                sa.select(mail_imports.c.message_id_header, mail_imports.c.conversation_id).where(
                    mail_imports.c.message_id_header.in_(mail.references)
                )
            )
        }
        candidates += [found[reference] for reference in mail.references if reference in found]
    if mail.message_id is not None and mail.message_id in run.referenced_by:
        candidates.append(run.referenced_by[mail.message_id])
    if not candidates:
        return None
    owned = {
        row.id
        for row in await run.db.fetch_all(
            sa.select(conversations.c.id).where(
                conversations.c.id.in_(candidates), conversations.c.customer_id == customer_id
            )
        )
    }
    return next((candidate for candidate in candidates if candidate in owned), None)


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
