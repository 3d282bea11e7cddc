"""Staff accounts as rows: the rules for their details, and the team's CSV export and import.

Plain functions on plain values, so every rule of an import is tested without HTTP.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from board.i18n import gettext as _
from board.web import email_problem

Record = Any
ROLES = ("staff", "admin")
NAME_MAX, TITLE_MAX, SIGNATURE_MAX = 120, 60, 1000
# New accounts need an argon2 hash each (~0.1 s): a bound on rows bounds the request.
MAX_IMPORT_BYTES = 1024 * 1024
MAX_IMPORT_ROWS = 200
CSV_COLUMNS = ("email", "name", "role", "title", "signature", "active", "accepting", "areas")
# Areas of responsibility in one cell: request type names, "Rechnung | Technik".
AREAS_SEPARATOR = "|"
TRUE_WORDS = {"1", "yes", "y", "true", "ja", "j", "wahr", "x"}
FALSE_WORDS = {"0", "no", "n", "false", "nein", "falsch"}
# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- account details ---------------------------------------------------------------------


def member_problems(
    email: str, name: str, role: str | None, title: str | None, signature: str | None
) -> dict[str, str]:
    """What is wrong with a staff account's details, by field (empty when nothing is)."""
    problems: dict[str, str] = {}
    if problem := email_problem(email):
        problems["email"] = problem
    if not name:
        problems["name"] = _("Please enter the name.")
    elif len(name) > NAME_MAX:
        problems["name"] = _("The name may have at most %(count)s characters.", count=NAME_MAX)
    if role is not None and role not in ROLES:
        problems["role"] = _("The role must be “admin” or “staff”.")
    if title and len(title) > TITLE_MAX:
        problems["title"] = _("The title may have at most %(count)s characters.", count=TITLE_MAX)
    if signature and len(signature) > SIGNATURE_MAX:
        problems["signature"] = _(
            "The signature may have at most %(count)s characters.", count=SIGNATURE_MAX
        )
    return problems


def parse_flag(text: str) -> bool | None:
    """1/0, yes/no, ja/nein, true/false in any case; None for a blank; ValueError otherwise."""
    word = text.strip().lower()
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


# --- CSV ---------------------------------------------------------------------------------


def csv_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def team_csv(
    members: list[Record], delimiter: str, areas_of: dict[int, list[str]] | None = None
) -> str:
    """UTF-8 with a BOM, so Excel reads umlauts; formula-like cells are defused with a '.
    `areas_of`: each member's request type names, by user id."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for member in members:
        cells = (member.email, member.name, member.role, member.title or "", member.signature)
        flags = ("1" if member.is_active else "0", "1" if member.accepting else "0")
        areas = f" {AREAS_SEPARATOR} ".join((areas_of or {}).get(member.id, []))
        writer.writerow([csv_cell(cell) for cell in cells] + list(flags) + [csv_cell(areas)])
    return "\ufeff" + buffer.getvalue()


@dataclass(frozen=True)
class ImportRow:
    """One account of an import; None means "column absent or blank: keep (new: default)"."""

    line: int
    email: str
    name: str
    role: str | None
    title: str | None
    signature: str | None
    active: bool | None
    accepting: bool | None
    areas: tuple[str, ...] | None = None  # request type names as written


class ImportReport:
    """The rows of an uploaded file and everything wrong with it, by line."""

    def __init__(self) -> None:
        self.rows: list[ImportRow] = []
        self.file_problem: str | None = None
        self.line_problems: dict[int, list[str]] = {}

    def add(self, line: int, message: str) -> None:
        self.line_problems.setdefault(line, []).append(message)

    @property
    def ok(self) -> bool:
        return self.file_problem is None and not self.line_problems

    def messages(self) -> list[str]:
        if self.file_problem:
            return [self.file_problem]
        return [
            _("Line %(line)s: %(problems)s", line=line, problems=" ".join(problems))
            for line, problems in sorted(self.line_problems.items())
        ]


def _imported_cell(record: dict[str, str], column: str) -> str | None:
    value = record.get(column)
    if value is None:
        return None
    value = value.strip()
    # Undo the export's defusing, so an exported file imports unchanged.
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        value = value[1:]
    return value


def _import_row(report: ImportReport, line: int, record: dict[str, str]) -> ImportRow:
    email = (_imported_cell(record, "email") or "").lower()
    role = (_imported_cell(record, "role") or "").lower() or None
    title = _imported_cell(record, "title")
    signature = _imported_cell(record, "signature")
    name = _imported_cell(record, "name") or ""
    for message in member_problems(email, name, role, title, signature).values():
        report.add(line, message)
    flags: dict[str, bool | None] = {}
    for column in ("active", "accepting"):
        try:
            flags[column] = parse_flag(_imported_cell(record, column) or "")
        except ValueError:
            flags[column] = None
            report.add(line, _("“%(column)s” must be 1 or 0 (or yes/no, ja/nein).", column=column))
    areas_cell = _imported_cell(record, "areas")
    areas = None
    if areas_cell:
        areas = tuple(name.strip() for name in areas_cell.split(AREAS_SEPARATOR) if name.strip())
    return ImportRow(line, email, name, role, title, signature, **flags, areas=areas)


def parse_team_csv(data: bytes) -> ImportReport:
    """Reads every row and collects every problem: comma or semicolon, with or without BOM."""
    report = ImportReport()
    if len(data) > MAX_IMPORT_BYTES:
        report.file_problem = _("The file is larger than %(size)s MB.", size=1)
        return report
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError:
        report.file_problem = _("The file is not UTF-8 encoded. Please save it as “CSV UTF-8”.")
        return report
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        if not any(header):
            report.file_problem = _("The file is empty.")
            return report
        if problem := _header_problem(header):
            report.file_problem = problem
            return report
        line_end = reader.line_num
        seen: dict[str, int] = {}
        for cells in reader:
            line, line_end = line_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(report.rows) == MAX_IMPORT_ROWS:
                report.file_problem = _(
                    "The file has more than %(count)s rows. Please split it.",
                    count=MAX_IMPORT_ROWS,
                )
                return report
            if len(cells) > len(header):
                report.add(line, _("This line has more cells than the header."))
            row = _import_row(report, line, dict(zip(header, cells, strict=False)))
            if row.email in seen:
                report.add(
                    line,
                    _(
                        "The email address %(email)s already appears in line %(line)s.",
                        email=row.email,
                        line=seen[row.email],
                    ),
                )
            else:
                seen[row.email] = line
            report.rows.append(row)
    except csv.Error:
        report.file_problem = _(
            "Line %(line)s could not be read as CSV (check its quotation marks).",
            line=reader.line_num,
        )
        return report
    if not report.rows:
        report.file_problem = _("The file contains no staff accounts.")
    return report


def _header_problem(header: list[str]) -> str | None:
    for column in header:
        if column not in CSV_COLUMNS:
            return _(
                "Unknown column “%(column)s”. The columns are: %(columns)s.",
                column=column,
                columns=", ".join(CSV_COLUMNS),
            )
        if header.count(column) > 1:
            return _("The column “%(column)s” appears twice.", column=column)
    for column in ("email", "name"):
        if column not in header:
            return _("The header line lacks the column “%(column)s”.", column=column)
    return None


def check_against_accounts(
    report: ImportReport, accounts: dict[str, Record], acting_user_id: int
) -> None:
    """Rules that need the database: customers stay customers, admins keep themselves."""
    for row in report.rows:
        account = accounts.get(row.email)
        if account is None:
            continue
        if account.role not in ROLES:
            report.add(row.line, _("This email address belongs to a customer account."))
        elif account.id == acting_user_id:
            if row.role == "staff":
                report.add(row.line, _("You cannot remove your own administrator role."))
            if row.active is False:
                report.add(row.line, _("You cannot deactivate your own account."))
