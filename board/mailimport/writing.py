"""Writing parsed mail into conversations: threads, customers, files, one transaction each."""

from __future__ import annotations

import io
import secrets
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path

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
    one_at_a_time_sync,
    read_markers,
    search_queue,
    users,
    utcnow,
)
from board.i18n import gettext as _
from board.i18n import speaking
from board.inbox.queries import FIRST_TICKET_NUMBER
from board.mailimport.reading import (
    NAME_MAX,
    Attachment,
    ParsedMail,
    RawMail,
    open_source,
    parse_mail,
    read_date,
)
from board.markup import render_markdown, subject_from
from board.security import STAFF_ROLES, hash_password
from board.uploads import MIB, StoredFile, UploadRejected, store_upload


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
                    settings.upload_dir,
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
    headers first, then by the subject, both only among the same customer's; else a new
    one."""
    customer_id = _recipient_customer_id(connection, run, mail) if from_shop else author_id
    conversation_id = _thread_by_headers(connection, run, mail, customer_id)
    if conversation_id is not None:
        return conversation_id, False
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
    one_at_a_time_sync(connection, "customer numbers")
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


def _thread_by_headers(
    connection: sa.Connection, run: _Run, mail: ParsedMail, customer_id: int
) -> int | None:
    """The conversation of any mail this one refers to, imported in this run or before, or
    of an imported mail that referred to this one; only a conversation of `customer_id`.
    A mail that refers into another customer's thread (a forward, a CC) opens its own:
    it must not put its sender's text and files in front of someone else."""
    candidates = []
    if mail.references:
        found = dict(
            connection.execute(
                sa.select(mail_imports.c.message_id_header, mail_imports.c.conversation_id).where(
                    mail_imports.c.message_id_header.in_(mail.references)
                )
            ).all()
        )
        candidates += [found[reference] for reference in mail.references if reference in found]
    if mail.message_id is not None and mail.message_id in run.referenced_by:
        candidates.append(run.referenced_by[mail.message_id])
    if not candidates:
        return None
    owned = set(
        connection.execute(
            sa.select(conversations.c.id).where(
                conversations.c.id.in_(candidates), conversations.c.customer_id == customer_id
            )
        ).scalars()
    )
    return next((candidate for candidate in candidates if candidate in owned), None)


def _new_conversation(
    connection: sa.Connection, customer_id: int, body: str, when: datetime
) -> int:
    one_at_a_time_sync(connection, "ticket numbers")
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
    # Found by search once the server's indexer has seen it, like any other message.
    connection.execute(
        search_queue.insert().values(doc_type="message", doc_id=message_id, created_at=utcnow())
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
