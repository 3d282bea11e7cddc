"""The team page: staff accounts (admins change them), availability, absences, CSV export/import."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases import Database
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import permissions
from board.conversations import types as request_types
from board.db import absences, fetch_rows, sessions, users, utcnow, write_transaction
from board.errors import Invalid
from board.i18n import gettext as _
from board.pagecache import bump_forum_version
from board.security import CurrentUser, hash_password_async
from board.staff.team_csv import (
    MAX_IMPORT_BYTES,
    ROLES,
    ImportRow,
    check_against_accounts,
    member_problems,
    parse_team_csv,
    team_csv,
)
from board.web import (
    db,
    field,
    path_for,
    read_form,
    redirect,
    render,
    require_admin,
    require_staff,
    settings_of,
)

Record = Any
NOTE_MAX = 200
DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


# --- rules on plain values ---------------------------------------------------------------


def can_delete_absence(user: CurrentUser, absence: Record) -> bool:
    return user.is_admin or absence.user_id == user.id


def local_midnight_utc(day: date, timezone: str) -> datetime:
    """The start of `day` in the shop's time zone, as naive UTC (the stored convention)."""
    local = datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


def parse_day(text: str) -> date | None:
    if not DAY_PATTERN.fullmatch(text):
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def absence_period(
    starts: str, ends: str, timezone: str, today: date
) -> tuple[tuple[datetime, datetime] | None, dict[str, str]]:
    """From the start of the first day to the end of the last day (local), as UTC."""
    errors: dict[str, str] = {}
    first, last = parse_day(starts), parse_day(ends)
    if first is None:
        errors["starts"] = _("Please enter a valid date.")
    if last is None:
        errors["ends"] = _("Please enter a valid date.")
    elif first is not None and last < first:
        errors["ends"] = _("The last day cannot be before the first day.")
    elif last < today:
        errors["ends"] = _("This absence would already be over.")
    if errors:
        return None, errors
    begin = local_midnight_utc(first, timezone)
    end = local_midnight_utc(last + timedelta(days=1), timezone)
    return (begin, end), errors


# --- queries -----------------------------------------------------------------------------


class TeamChanged(Exception):
    """The accounts changed between checking an import (or a form) and writing it."""


MEMBER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.name,
    users.c.role,
    users.c.title,
    users.c.signature,
    users.c.is_active,
    users.c.accepting,
    users.c.availability_note,
    users.c.deputy_id,
)


async def team_members(database: Database) -> list[Record]:
    """Every staff account, the deactivated ones last."""
    return await fetch_rows(
        database,
        sa.select(*MEMBER_COLUMNS)
        .where(users.c.role.in_(ROLES))
        .order_by(users.c.is_active.desc(), users.c.name, users.c.id),
    )


async def coming_absences(database: Database, now: datetime) -> list[Record]:
    """Current and upcoming absences, soonest first."""
    return await fetch_rows(
        database,
        sa.select(absences, users.c.name)
        .select_from(absences.join(users, users.c.id == absences.c.user_id))
        .where(absences.c.ends_at > now)
        .order_by(absences.c.starts_at, absences.c.id),
    )


async def member_or_404(database: Database, user_id: int) -> Record:
    row = await database.fetch_one(
        sa.select(*MEMBER_COLUMNS).where(users.c.id == user_id, users.c.role.in_(ROLES))
    )
    if row is None:
        raise HTTPException(404)
    return row


async def accounts_by_email(database: Database, emails: list[str]) -> dict[str, Record]:
    """Any account (customers too) holding one of these addresses."""
    if not emails:
        return {}
    rows = await database.fetch_all(
        sa.select(users.c.id, users.c.email, users.c.role).where(users.c.email.in_(emails))
    )
    return {row.email: row for row in rows}


async def create_member(database: Database, values: dict[str, Any], password_hash: str) -> None:
    """Raises TeamChanged when the email was taken meanwhile."""
    async with write_transaction(database):
        if await accounts_by_email(database, [values["email"]]):
            raise TeamChanged(values["email"])
        await _insert_member(database, values, password_hash)


async def _insert_member(database: Database, values: dict[str, Any], password_hash: str) -> None:
    await database.execute(
        users.insert().values(
            **values,
            password_hash=password_hash,
            must_change_password=True,  # the generated password is shown once, then replaced
            created_at=utcnow(),
        )
    )


async def update_member(database: Database, user_id: int, values: dict[str, Any]) -> None:
    async with write_transaction(database):
        await database.execute(users.update().where(users.c.id == user_id).values(**values))
        if values.get("is_active") is False:
            # Deactivation takes effect at once: the next request finds no session.
            await database.execute(sessions.delete().where(sessions.c.user_id == user_id))
        await bump_forum_version(database)  # name and title show beside forum posts


async def import_members(
    database: Database,
    rows: list[ImportRow],
    password_hashes: dict[str, str],
    areas: dict[str, set[int]] | None = None,
) -> None:
    """All rows or none; raises TeamChanged when an address changed hands since the check.
    `areas`: the request type ids of the rows whose `areas` cell was filled, by email."""
    areas = areas or {}
    async with write_transaction(database):
        accounts = await accounts_by_email(database, [row.email for row in rows])
        for row in rows:
            account = accounts.get(row.email)
            changes = _row_changes(row)
            if account is None and row.email in password_hashes:
                changes.setdefault("role", "staff")
                await _insert_member(database, changes, password_hashes[row.email])
            elif account is None or account.role not in ROLES or row.email in password_hashes:
                raise TeamChanged(row.email)
            else:
                await database.execute(
                    users.update().where(users.c.id == account.id).values(changes)
                )
                if row.active is False:
                    await database.execute(
                        sessions.delete().where(sessions.c.user_id == account.id)
                    )
            if row.email in areas:
                user_id = await database.fetch_val(
                    sa.select(users.c.id).where(users.c.email == row.email)
                )
                await request_types.replace_responsibilities(database, user_id, areas[row.email])
        await bump_forum_version(database)


async def _areas_by_email(database: Database, report) -> dict[str, set[int]]:
    """The request type ids the import names per account; unknown names are line problems."""
    by_name = {row.name.lower(): row.id for row in await request_types.all_types(database)}
    found: dict[str, set[int]] = {}
    for row in report.rows:
        if row.areas is None:
            continue  # column absent or blank: the areas stay as they are
        unknown = [name for name in row.areas if name.lower() not in by_name]
        for name in unknown:
            report.add(row.line, _("Unknown request type “%(name)s”.", name=name))
        found[row.email] = {by_name[name.lower()] for name in row.areas if name not in unknown}
    return found


def _row_changes(row: ImportRow) -> dict[str, Any]:
    changes: dict[str, Any] = {"email": row.email, "name": row.name}
    if row.role is not None:
        changes["role"] = row.role
    if row.title is not None:
        changes["title"] = row.title or None
    if row.signature is not None:
        changes["signature"] = row.signature
    if row.active is not None:
        changes["is_active"] = row.active
    if row.accepting is not None:
        changes["accepting"] = row.accepting
    return changes


# --- the page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsenceView:
    id: int
    user_id: int
    name: str
    starts_at: datetime
    last_moment: datetime  # shown as the last day away
    note: str
    current: bool
    can_delete: bool


async def render_team(request: Request, status_code: int = 200, **context: Any) -> Response:
    user = require_staff(request)
    now = utcnow()
    members = await team_members(db(request))
    by_member: dict[int, list[AbsenceView]] = {}
    for row in await coming_absences(db(request), now):
        view = AbsenceView(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            starts_at=row.starts_at,
            last_moment=row.ends_at - timedelta(microseconds=1),
            note=row.note,
            current=row.starts_at <= now,
            can_delete=can_delete_absence(user, row),
        )
        by_member.setdefault(row.user_id, []).append(view)
    away = {
        member_id: max((a for a in views if a.current), key=lambda a: a.last_moment)
        for member_id, views in by_member.items()
        if any(a.current for a in views)
    }
    me = next((member for member in members if member.id == user.id), None)
    defaults: dict[str, Any] = {
        "create_form": {"role": "staff"},
        "create_errors": {},
        "absence_form": {"user_id": str(user.id)},
        "cover_form": {
            "deputy": str(me.deputy_id or "") if me else "",
            "availability_note": me.availability_note if me else "",
        },
        "cover_errors": {},
        "absence_errors": {},
        "import_errors": [],
        "edit_forms": {},
        "edit_errors": {},
        "areas_errors": {},
    }
    return render(
        request,
        "staff/team.html",
        status_code,
        request_types=await request_types.all_types(db(request)),
        responsibilities=await request_types.responsibilities(db(request)),
        members=members,
        member_names={member.id: member.name for member in members},
        absences_by_member=by_member,
        away=away,
        me=me,
        can_manage_team=user.is_admin,
        can_see_staff_emails=permissions.can_see_staff_emails(user),
        **{**defaults, **context},
    )


async def team(request: Request) -> Response:
    """The team; `?format=csv` exports it, a POST imports a CSV file (admins only)."""
    user = require_staff(request)
    if request.method == "POST":
        require_admin(request)
        return await _import_csv(request, user)
    if request.query_params.get("format") == "csv":
        require_admin(request)
        names = {row.id: row.name for row in await request_types.all_types(db(request))}
        areas_of = {
            user_id: [names[type_id] for type_id in names if type_id in type_ids]
            for user_id, type_ids in (await request_types.responsibilities(db(request))).items()
        }
        return _csv_response(request, await team_members(db(request)), areas_of)
    return await render_team(request)


def _csv_response(
    request: Request, members: list[Record], areas_of: dict[int, list[str]]
) -> Response:
    # Excel splits a CSV file at the list separator of its region: ";" in German.
    delimiter = ";" if request.state.locale == "de" else ","
    return Response(
        team_csv(members, delimiter, areas_of),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="team.csv"'},
    )


async def _import_csv(request: Request, user: CurrentUser) -> Response:
    form = await read_form(request, max_files=1)
    try:
        upload = form.get("csv")
        if not isinstance(upload, UploadFile) or not upload.filename:
            message = _("Please choose a CSV file.")
            return await render_team(request, 400, import_errors=[message])
        data = await upload.read(MAX_IMPORT_BYTES + 1)
    finally:
        await form.close()
    report = parse_team_csv(data)
    accounts: dict[str, Record] = {}
    if report.file_problem is None:
        accounts = await accounts_by_email(db(request), [row.email for row in report.rows])
        check_against_accounts(report, accounts, user.id)
    areas = await _areas_by_email(db(request), report)
    if not report.ok:
        return await render_team(request, 400, import_errors=report.messages())
    passwords = {
        row.email: secrets.token_urlsafe(12) for row in report.rows if row.email not in accounts
    }
    hashes = {email: await hash_password_async(password) for email, password in passwords.items()}
    try:
        await import_members(db(request), report.rows, hashes, areas)
    except TeamChanged:
        message = _("The team changed during the import. Nothing was imported; please try again.")
        return await render_team(request, 409, import_errors=[message])
    if not passwords:
        return redirect(path_for(request, "team"))
    created = [
        (row.name, row.email, passwords[row.email]) for row in report.rows if row.email in passwords
    ]
    return render(
        request,
        "staff/team_passwords.html",
        created=created,
        updated_count=len(report.rows) - len(created),
    )


async def team_create(request: Request) -> Response:
    require_admin(request)
    form = await read_form(request)
    values = {
        "email": field(form, "email", 1000).lower(),
        "name": field(form, "name", 1000),
        "role": field(form, "role", 16) or "staff",
        "title": field(form, "title", 1000),
        "signature": _multiline(form, "signature"),
    }
    errors = member_problems(**values)
    if not errors and await accounts_by_email(db(request), [values["email"]]):
        errors["email"] = _("This email address belongs to another account.")
    if not errors:
        password = secrets.token_urlsafe(12)
        password_hash = await hash_password_async(password)
        try:
            await create_member(
                db(request), {**values, "title": values["title"] or None}, password_hash
            )
        except TeamChanged:
            errors["email"] = _("This email address belongs to another account.")
    if errors:
        return await render_team(request, 400, create_form=values, create_errors=errors)
    created = [(values["name"], values["email"], password)]
    return render(request, "staff/team_passwords.html", created=created, updated_count=0)


def _multiline(form: FormData, name: str) -> str:
    # Browsers send textarea line breaks as CRLF; stored text uses LF.
    return field(form, name, 10_000).replace("\r\n", "\n")


async def team_update(request: Request) -> Response:
    user = require_admin(request)
    form = await read_form(request)
    member = await member_or_404(db(request), request.path_params["user_id"])
    changes, errors, shown = _member_changes(form, member, user)
    if errors:
        return await render_team(
            request, 400, edit_forms={member.id: shown}, edit_errors={member.id: errors}
        )
    if changes:
        await update_member(db(request), member.id, changes)
    return redirect(path_for(request, "team"))


def _member_changes(
    form: FormData, member: Record, user: CurrentUser
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The changes the edit form asks for, its errors, and its values to show again.

    Fields left out of the form stay as they are.
    """
    shown = {
        "name": field(form, "name", 1000) if "name" in form else member.name,
        "role": field(form, "role", 16) if "role" in form else member.role,
        "title": field(form, "title", 1000) if "title" in form else (member.title or ""),
        "signature": _multiline(form, "signature") if "signature" in form else member.signature,
        "active": field(form, "active", 5) if "active" in form else str(int(member.is_active)),
    }
    errors = member_problems(
        member.email, shown["name"], shown["role"], shown["title"], shown["signature"]
    )
    errors.pop("email", None)  # not editable here; an old address must not block the form
    active = {"1": True, "0": False}.get(shown["active"])
    if active is None:
        errors["active"] = _("Please choose active or deactivated.")
    if member.id == user.id and shown["role"] != "admin":
        errors["role"] = _("You cannot remove your own administrator role.")
    if member.id == user.id and active is False:
        errors["active"] = _("You cannot deactivate your own account.")
    changes = {
        "name": shown["name"],
        "role": shown["role"],
        "title": shown["title"] or None,
        "signature": shown["signature"],
        "is_active": active,
    }
    current = {
        "name": member.name,
        "role": member.role,
        "title": member.title,
        "signature": member.signature,
        "is_active": member.is_active,
    }
    return {k: v for k, v in changes.items() if v != current[k]}, errors, shown


async def team_areas(request: Request) -> Response:
    """A staff member's areas of responsibility (request types, checkboxes `types`):
    admins set anyone's, everyone else their own."""
    user = require_staff(request)
    form = await read_form(request)
    member = await member_or_404(db(request), request.path_params["user_id"])
    if member.id != user.id and not user.is_admin:
        raise HTTPException(403, _("You can only change your own areas of responsibility."))
    chosen = [value for value in form.getlist("types") if isinstance(value, str)]
    if not all(value.isdigit() for value in chosen):
        errors = {"types": _("Please choose among the listed types.")}
        return await render_team(request, 400, areas_errors={member.id: errors})
    try:
        await request_types.set_responsibilities(
            db(request), member.id, {int(value) for value in chosen}
        )
    except Invalid as invalid:
        return await render_team(request, 400, areas_errors={member.id: invalid.errors})
    return redirect(path_for(request, "team"), anchor="areas")


async def team_availability(request: Request) -> Response:
    user = require_staff(request)
    form = await read_form(request)
    accepting = {"1": True, "0": False}.get(field(form, "accepting", 5))
    if accepting is None:
        raise HTTPException(400)
    await db(request).execute(
        users.update().where(users.c.id == user.id).values(accepting=accepting)
    )
    return redirect(path_for(request, "team"))


async def team_absence_add(request: Request) -> Response:
    user = require_staff(request)
    form = await read_form(request)
    values = {
        "starts": field(form, "starts", 20),
        "ends": field(form, "ends", 20),
        "note": field(form, "note", 1000),
        "user_id": field(form, "user_id", 20) or str(user.id),
    }
    if values["user_id"] != str(user.id):
        if not user.is_admin:
            raise HTTPException(403, _("You can only enter your own absences."))
        if not values["user_id"].isdigit():
            raise HTTPException(404)
    member = await member_or_404(db(request), int(values["user_id"]))
    timezone = settings_of(request).timezone
    today = datetime.now(ZoneInfo(timezone)).date()
    period, errors = absence_period(values["starts"], values["ends"], timezone, today)
    if len(values["note"]) > NOTE_MAX:
        errors["note"] = _("The note may have at most %(count)s characters.", count=NOTE_MAX)
    if errors or period is None:
        return await render_team(request, 400, absence_form=values, absence_errors=errors)
    await db(request).execute(
        absences.insert().values(
            user_id=member.id,
            starts_at=period[0],
            ends_at=period[1],
            note=values["note"],
            created_at=utcnow(),
        )
    )
    # The handover job (board/staff/handover.py): an absence from today starts now.
    wake = request.app.state._state.get("handover_wake")
    if wake is not None:
        wake.set()
    return redirect(path_for(request, "team"))


async def team_absence_delete(request: Request) -> Response:
    user = require_staff(request)
    await read_form(request)
    absence = await db(request).fetch_one(
        sa.select(absences).where(absences.c.id == request.path_params["absence_id"])
    )
    if absence is None:
        raise HTTPException(404)
    if not can_delete_absence(user, absence):
        raise HTTPException(403, _("You can only remove your own absences."))
    await db(request).execute(absences.delete().where(absences.c.id == absence.id))
    return redirect(path_for(request, "team"))


routes = [
    Route("/staff/team", team, methods=["GET", "POST"], name="team"),
    Route("/staff/team/new", team_create, methods=["POST"], name="team_create"),
    Route(
        "/staff/team/availability", team_availability, methods=["POST"], name="team_availability"
    ),
    Route("/staff/team/absences", team_absence_add, methods=["POST"], name="team_absence_add"),
    Route(
        "/staff/team/absences/{absence_id:int}/delete",
        team_absence_delete,
        methods=["POST"],
        name="team_absence_delete",
    ),
    Route("/staff/team/{user_id:int}", team_update, methods=["POST"], name="team_update"),
    Route("/staff/team/{user_id:int}/areas", team_areas, methods=["POST"], name="team_areas"),
]
