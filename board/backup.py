"""Backups of the embedded site: the SQLite database, the uploaded files and the secret key.

`backup` runs while the server serves. SQLite's online backup API copies the database as
one consistent snapshot however much is written meanwhile (a plain file copy of a WAL
database can be torn). Uploads are stored by their SHA-256 and never change, so after the
snapshot every file its attachments name is copied; files added later belong to the next
backup. The secret key is kept so that sessions, guest links and unsubscribe links still
work after a restore. The search index is not copied: the site rebuilds it at start.

`restore` puts a backup in place of a data folder, with the server stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from board.config import Settings
from board.uploads import stored_path

MANIFEST = "backup.json"
DATABASE = "board.db"
UPLOADS = "uploads"  # in a backup folder, whatever BOARD_UPLOAD_DIR is
SECRET = "secret_key"


class BackupError(Exception):
    """Something an operator can act on; the command prints it without a traceback."""


@dataclass
class BackupSummary:
    path: Path
    attachments: int
    missing_files: list[str]
    database_bytes: int


def _require_sqlite(settings: Settings) -> Path:
    if not settings.is_sqlite:
        raise BackupError(
            "backup copies the embedded SQLite database; for PostgreSQL use pg_dump "
            "and copy the uploads folder yourself"
        )
    database = settings.sqlite_path
    if not database.exists():
        raise BackupError(f"no database at {database}")
    return database


def backup(settings: Settings, target: Path) -> BackupSummary:
    """Writes a backup folder at `target`, which must not exist yet or be empty."""
    database = _require_sqlite(settings)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: choose a new folder for each backup")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / (DATABASE + ".partial")
    source = sqlite3.connect(database, timeout=30)
    copy = sqlite3.connect(partial)
    try:
        # In one step: one read transaction, so one snapshot. Under WAL the writers go on
        # meanwhile (copying in steps would start over after every write of theirs).
        source.backup(copy)
        hashes = [row[0] for row in copy.execute("SELECT DISTINCT sha256 FROM attachments")]
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        copy.close()
        source.close()
    os.replace(partial, target / DATABASE)
    missing = []
    for sha256 in hashes:
        stored = stored_path(settings.upload_dir, sha256)
        if not stored.exists():
            missing.append(sha256)  # erased after the snapshot: nothing to keep
            continue
        copied = stored_path(target / UPLOADS, sha256)
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(stored, copied)
    secret = settings.data_dir / SECRET
    if secret.exists():
        shutil.copy2(secret, target / SECRET)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "schema_revision": revision[0] if revision else None,
        "attachments": len(hashes) - len(missing),
        "missing_files": missing,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    size = (target / DATABASE).stat().st_size
    return BackupSummary(target, len(hashes) - len(missing), missing, size)


def check(folder: Path) -> dict:
    """The backup's manifest, after checking that its database is whole."""
    manifest_file, database = folder / MANIFEST, folder / DATABASE
    if not manifest_file.exists() or not database.exists():
        raise BackupError(f"{folder} is no backup: {MANIFEST} or {DATABASE} is missing")
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as problem:  # not even a database any more
        verdict = str(problem)
    finally:
        connection.close()
    if verdict != "ok":
        raise BackupError(f"the database in {folder} is damaged: {verdict}")
    return json.loads(manifest_file.read_text())


def restore(settings: Settings, folder: Path, replace: bool = False) -> dict:
    """Puts the backup in `folder` in place of the data folder's database, uploads and
    key. Run it with the server stopped. An existing database is only replaced with
    `replace`; the old one is kept beside it as board.db.before-restore (with its -wal
    and -shm files, which may hold committed transactions)."""
    if not settings.is_sqlite:
        raise BackupError("restore writes the embedded SQLite database; use pg_restore")
    manifest = check(folder)
    database = settings.sqlite_path
    if database.exists() and not replace:
        raise BackupError(f"{database} exists: stop the server and pass --replace")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The old database moves aside whole: its -wal file may hold committed transactions
    # not yet checkpointed into board.db, and must not meet the new database either.
    kept = database.with_name(database.name + ".before-restore")
    for suffix in ("", "-wal", "-shm"):
        part = database.with_name(database.name + suffix)
        if part.exists():
            os.replace(part, kept.with_name(kept.name + suffix))
    shutil.copy2(folder / DATABASE, database.with_name(database.name + ".partial"))
    os.replace(database.with_name(database.name + ".partial"), database)
    uploads = folder / UPLOADS
    if uploads.exists():
        shutil.copytree(uploads, settings.upload_dir, dirs_exist_ok=True)
    if (folder / SECRET).exists():
        shutil.copy2(folder / SECRET, settings.data_dir / SECRET)
    # The index describes the old database: the next start builds it anew.
    shutil.rmtree(settings.data_dir / "index", ignore_errors=True)
    return manifest
