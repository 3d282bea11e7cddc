"""A throwaway PostgreSQL cluster for tests: initdb into a temporary folder, a loopback
port, no fsync; stopped and deleted afterwards (the recipe of ../shared/TESTING.md).

PostgreSQL refuses to run as root, so the server runs as the `postgres` user through
runuser; as any other user it runs as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from board.db import psycopg_url

INSTALL_HINT = "apt-get install --no-install-recommends postgresql"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian keeps one per major version)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return versions[-1] if versions else None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def throwaway_cluster(port: int) -> Iterator[str]:
    """Yields the server's URL (user postgres, no password, database postgres)."""
    binaries = postgres_bin()
    if binaries is None:
        reason = f"PostgreSQL not found ({INSTALL_HINT})"
        if os.environ.get("BOARD_E2E") == "required":
            pytest.fail(f"{reason}, but BOARD_E2E=required")
        pytest.skip(reason)
    # Not pytest's tmp_path: its 0700 root-owned parents keep the postgres user out.
    folder = Path(tempfile.mkdtemp(prefix="board-pg-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    subprocess.run(
        _as_server_user(
            [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
            + ["-E", "UTF8", "--locale=C.UTF-8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", "30"]
    subprocess.run(
        _as_server_user([*pg_ctl, "-l", str(folder / "log"), "-o", options, "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([*pg_ctl, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


TEMPLATE = "board_installed"


def database_url(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _run(server_url: str, statement: str) -> None:
    admin = sa.create_engine(psycopg_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(statement))
    finally:
        admin.dispose()


def create_database(server_url: str, name: str, template: str | None = None) -> None:
    """A file-level copy of `template` (no connections to it may be open), or empty."""
    _run(server_url, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


@contextmanager
def fresh_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server for one test, a copy of `template` or empty;
    dropped afterwards."""
    name = f"board_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name, template)
    try:
        yield database_url(server_url, name)
    finally:
        _run(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
