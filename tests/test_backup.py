"""Backups: taken with `python -m board backup` while the site writes, restored with
`python -m board restore` into a fresh folder, and the restored site works."""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from board.app import create_app
from board.config import Settings
from tests.conftest import PASSWORD, index_now, login, make_settings
from tests.test_app import run_command
from tests.test_inbox import PDF, open_conversation
from tests.test_search import open_topic, refs, reply


def counts(database: Path) -> tuple[int, list[tuple[int, int, int]]]:
    """Posts in the file, and each topic's post counter next to its real number of posts:
    a torn copy would disagree, a snapshot cannot."""
    connection = sqlite3.connect(database)
    try:
        total = connection.execute("SELECT count(*) FROM posts").fetchone()[0]
        topics = connection.execute(
            "SELECT t.id, t.post_count, (SELECT count(*) FROM posts p WHERE p.topic_id = t.id) "
            "FROM topics t"
        ).fetchall()
    finally:
        connection.close()
    return total, topics


@pytest.mark.sqlite_only  # the command backs up SQLite; PostgreSQL has pg_dump
def test_a_backup_taken_during_writes_restores_to_a_working_site(
    people, app, client, settings: Settings, tmp_path: Path
):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(
        erika, "Hier die Rechnung.", [("rechnung.pdf", PDF, "application/pdf")]
    )
    topic = open_topic(staff, "Wackeldackel", "Der Wackeldackel wackelt nicht.")

    # The site keeps writing while the backup runs.
    stop, written = threading.Event(), []

    def keep_writing() -> None:
        while not stop.is_set():
            written.append(reply(staff, topic, f"Nachtrag {len(written)}"))

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        target = tmp_path / "backup-1"
        result = run_command(["-m", "board", "backup", str(target)], settings.data_dir)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Backup written to" in result.stdout and "1 attached files" in result.stdout
    assert written, "nothing was written during the backup"

    backed_up, topics_in_backup = counts(target / "board.db")
    live_total, _ = counts(settings.sqlite_path)
    assert 2 <= backed_up <= live_total  # a moment between the first and the last write
    assert all(counter == real for _id, counter, real in topics_in_backup)
    manifest = json.loads((target / "backup.json").read_text())
    assert manifest["attachments"] == 1 and manifest["missing_files"] == []
    assert (target / "secret_key").read_text() == (settings.data_dir / "secret_key").read_text()

    # Restored into a new folder, it is a working site: login, conversation, file, search.
    restored = make_settings(tmp_path / "restored")
    result = run_command(["-m", "board", "restore", str(target)], restored.data_dir)
    assert result.returncode == 0, result.stderr
    with TestClient(create_app(restored), follow_redirects=False) as visitor:
        assert visitor.get("/").status_code == 200
        assert login(visitor, erika.email, PASSWORD).status_code == 303
        page = visitor.get(f"/inbox/{number}")
        assert page.status_code == 200 and "Hier die Rechnung." in page.text
        file_link = page.text.split('href="/attachments/', 1)[1].split('"', 1)[0]
        assert visitor.get(f"/attachments/{file_link}").content == PDF
        index_now(visitor.app, visitor)  # the index was not in the backup: built at start
        assert refs(visitor, "Wackeldackel") == [topic]


@pytest.mark.sqlite_only  # the command backs up SQLite; PostgreSQL has pg_dump
def test_backup_and_restore_refuse_what_would_lose_data(people, settings: Settings, tmp_path):
    open_conversation(people.customer())
    target = tmp_path / "backup"
    assert run_command(["-m", "board", "backup", str(target)], settings.data_dir).returncode == 0
    again = run_command(["-m", "board", "backup", str(target)], settings.data_dir)
    assert again.returncode == 1 and "not empty" in again.stderr  # no backup over a backup

    # A site that has a database keeps it unless --replace says otherwise.
    refused = run_command(["-m", "board", "restore", str(target)], settings.data_dir)
    assert refused.returncode == 1 and "--replace" in refused.stderr
    replaced = run_command(["-m", "board", "restore", "--replace", str(target)], settings.data_dir)
    assert replaced.returncode == 0, replaced.stderr
    assert (settings.data_dir / "board.db.before-restore").exists()

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "backup.json").write_text("{}")
    (damaged / "board.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    fresh = tmp_path / "fresh"
    broken = run_command(["-m", "board", "restore", str(damaged)], fresh)
    assert broken.returncode == 1 and "damaged" in broken.stderr + broken.stdout
    assert not (fresh / "board.db").exists()
    not_a_backup = run_command(["-m", "board", "restore", str(tmp_path)], fresh)
    assert not_a_backup.returncode == 1 and "no backup" in not_a_backup.stderr


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_postgresql_sites_are_told_to_use_their_own_tools(tmp_path, command):
    result = run_command(
        ["-m", "board", command, str(tmp_path / "x")],
        tmp_path,
        {"BOARD_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert result.returncode == 1
    assert ("pg_dump" if command == "backup" else "pg_restore") in result.stderr


@pytest.mark.sqlite_only  # SQLite's write-ahead log
def test_restore_moves_the_old_database_aside_with_its_write_ahead_log(
    people, settings: Settings, tmp_path
):
    """Committed transactions may still wait in board.db-wal: deleting it would lose them
    from the copy the restore promises to keep."""
    erika = people.customer()
    open_conversation(erika, "Vor der Sicherung")
    target = tmp_path / "backup"
    assert run_command(["-m", "board", "backup", str(target)], settings.data_dir).returncode == 0
    open_conversation(erika, "Nach der Sicherung")  # committed into the write-ahead log
    assert (settings.data_dir / "board.db-wal").stat().st_size > 0

    replaced = run_command(["-m", "board", "restore", "--replace", str(target)], settings.data_dir)
    assert replaced.returncode == 0, replaced.stderr
    kept = settings.data_dir / "board.db.before-restore"
    with closing(sqlite3.connect(kept)) as connection:
        subjects = {row[0] for row in connection.execute("SELECT subject FROM conversations")}
    assert subjects == {"Vor der Sicherung", "Nach der Sicherung"}
