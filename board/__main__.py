"""`python -m board COMMAND`: the operator's command line (also installed as `board`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from board.config import Settings


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    from board.setup import initialize

    admin = initialize(settings)
    print(f"Database ready: {settings.database_url}")
    if admin is not None:
        print_admin(admin, settings)
    return 0


def print_admin(admin, settings: Settings) -> None:
    print(f"Staff admin created: {admin.email}")
    if admin.password:
        print(f"One-time password (shown only now, change it after logging in): {admin.password}")
    base = settings.base_url.rstrip("/")
    print(f"Log in at {base}/login with this address; the staff area is {base}/staff")


def cmd_create_staff(settings: Settings, args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from board.db import migrate, sync_engine, users
    from board.setup import create_staff

    migrate(settings)
    engine = sync_engine(settings)
    with engine.begin() as connection:
        taken = connection.execute(sa.select(users.c.id).where(users.c.email == args.email.lower()))
        if taken.first():
            print(f"An account with {args.email} exists already.", file=sys.stderr)
            return 1
        staff = create_staff(connection, args.email, args.name, admin=args.admin)
    engine.dispose()
    print(f"Staff account created: {staff.email}")
    print(f"One-time password (change it after logging in): {staff.password}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from board.demo import fill_demo
    from board.setup import initialize

    if args.posts < args.topics:
        print(
            "--posts counts every post, first posts included: it must be >= --topics.",
            file=sys.stderr,
        )
        return 2
    initialize(settings)
    fill_demo(
        settings,
        customers=args.customers,
        topics=args.topics,
        posts=args.posts,
        seed=args.seed,
        conversations=args.conversations,
    )
    _recompute_statistics(settings)
    return cmd_reindex(settings, args)


def _recompute_statistics(settings: Settings) -> None:
    """The statistics' days of what the demo wrote, now rather than in the background of
    the first start (where a large demo's would compete with the first visitors)."""
    import asyncio

    from board.db import close_database, make_database
    from board.staff.stats_days import refresh_all

    async def recompute() -> int:
        database = make_database(settings)
        await database.connect()
        try:
            return await refresh_all(database, settings)
        finally:
            await close_database(database)

    print(f"Statistics: {asyncio.run(recompute())} days computed.")


def cmd_migrate_to(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from board.migrate_to import MigrationError, migrate_to

    url = make_url(args.url)
    shown_url = url.render_as_string(hide_password=True)
    print(f"Copying {settings.sqlite_path} to {shown_url} …")
    try:
        reports = migrate_to(
            settings,
            args.url,
            replace_existing=args.replace,
            progress=lambda table, rows: print(f"  {table}: {rows} rows"),
        )
    except MigrationError as problem:
        print(f"Nothing was switched over: {problem}", file=sys.stderr)
        return 1
    rows = sum(report.rows for report in reports)
    print(
        f"Verified: {len(reports)} tables, {rows} rows, the same counts and checksums in "
        "SQLite and PostgreSQL.\n"
        "Next step: stop Supportboard (if it served during this copy, run this command "
        "again with --replace while it is stopped), then set\n"
        f"  BOARD_DATABASE_URL={shown_url}\n"
        + ("(with the real password) " if url.password else "")
        + "in its environment and start it. Uploads, the secret key and the search index "
        f"stay in {settings.data_dir}; keep {settings.sqlite_path.name} there as the way back."
    )
    return 0


def cmd_reindex(settings: Settings, args: argparse.Namespace) -> int:
    from board.progress import Progress
    from board.search.indexing import rebuild
    from board.setup import initialize

    initialize(settings)
    with Progress("Search index", "documents") as progress:
        count = rebuild(settings, progress=progress.update)
    print(f"Search index rebuilt: {count} documents.")
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from board.backup import BackupError, backup

    try:
        summary = backup(settings, Path(args.path))
    except BackupError as problem:
        print(problem, file=sys.stderr)
        return 1
    print(
        f"Backup written to {summary.path}: database {summary.database_bytes // 1024} KiB, "
        f"{summary.attachments} attached files."
    )
    for sha256 in summary.missing_files:
        print(f"  file {sha256} was gone already (erased after the snapshot)", file=sys.stderr)
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from board.backup import BackupError, restore
    from board.db import migrate

    try:
        manifest = restore(settings, Path(args.path), replace=args.replace)
    except BackupError as problem:
        print(problem, file=sys.stderr)
        return 1
    migrate(settings)  # a backup from an older version gets the newer tables
    print(
        f"Restored the backup of {manifest['created_at']} into {settings.data_dir}; "
        "the search index is rebuilt at the next start."
    )
    return 0


def cmd_recount(settings: Settings, args: argparse.Namespace) -> int:
    from board.db import sync_engine
    from board.setup import recount

    engine = sync_engine(settings)
    with engine.begin() as connection:
        recount(connection)
    engine.dispose()
    print("Counters rebuilt.")
    return 0


def cmd_import_mail(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from board.db import close_database, make_database
    from board.mailimport import NotAMailSource, detect_source, import_mail, summary
    from board.setup import initialize

    paths = [Path(path) for path in args.paths]
    try:
        for path in paths:
            detect_source(path)  # before anything is created: a typo in PATH changes nothing
    except NotAMailSource as problem:
        print(problem, file=sys.stderr)
        return 2
    admin = initialize(settings)  # the shop's answers need a staff author
    if admin is not None:
        print_admin(admin, settings)

    async def run():
        db = make_database(settings)
        await db.connect()
        try:
            return await import_mail(settings, db, paths)
        finally:
            await close_database(db)

    report = asyncio.run(run())
    print(summary(report))
    return 1 if report.failed else 0


def _with_app(settings: Settings, work) -> int:
    """Runs `work(app)` against the database, outside a server, and closes it again."""
    from board.app import create_app
    from board.db import close_database
    from board.setup import initialize

    initialize(settings)
    app = create_app(settings)

    async def run() -> int:
        await app.state.db.connect()
        try:
            return await work(app)
        finally:
            await close_database(app.state.db)

    return asyncio.run(run())


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from board import mail

    async def work(app) -> int:
        if args.retry_failed:
            count = await mail.retry_failed(app.state.db)
            print(f"{count} failed mails will be tried again.")
        rows = await mail.unsent(app.state.db)
        if not rows:
            print("No pending or failed mail.")
            return 0
        print(f"{'id':>6}  {'state':<8} {'template':<17} {'to':<32} {'tries':>5}  next try / error")
        for row in rows:
            if row.failed_at:
                state, detail = "failed", row.last_error or ""
            else:
                state = "pending"
                detail = f"{row.next_attempt_at:%Y-%m-%d %H:%M} UTC"
                if row.last_error:
                    detail += f"  ({row.last_error})"
            print(
                f"{row.id:>6}  {state:<8} {row.template:<17} {row.to_address[:32]:<32} "
                f"{row.attempts:>5}  {detail[:120]}"
            )
        return 0

    return _with_app(settings, work)


def cmd_send_summary(settings: Settings, args: argparse.Namespace) -> int:
    from board import mail
    from board.app import postman_for
    from board.db import write_transaction
    from board.staff.summary import queue_summary

    async def work(app) -> int:
        async with write_transaction(app.state.db):
            readers = await queue_summary(app.state.db, settings)
        if not readers:
            print("No staff member has the daily summary turned on (see /account).")
            return 0
        sent = await mail.run_once(app.state.db, postman_for(app))
        print(f"Summary queued for {readers} staff members; {sent} mails sent now.")
        print("Mail that could not go out yet stays in the outbox: python -m board outbox")
        return 0

    return _with_app(settings, work)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="board",
        description="Supportboard's command line. Settings come from the BOARD_* environment.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create or migrate the database and the first admin")
    init.set_defaults(run=cmd_init)

    staff = commands.add_parser("create-staff", help="add a staff account")
    staff.add_argument("email")
    staff.add_argument("name")
    staff.add_argument("--admin", action="store_true", help="give the account admin rights")
    staff.set_defaults(run=cmd_create_staff)

    demo = commands.add_parser(
        "demo",
        help="fill the database with German sample content",
        description="Adds customers, forum topics and posts, conversations and the team's "
        "canned replies; runs again without conflicts. Prints an example customer's login "
        "(their inbox shows every state a request can be in) and the demo password.",
    )
    demo.add_argument(
        "--customers",
        type=int,
        default=200,
        help="new customer accounts; 0 adds content for the customers already there "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--topics",
        type=int,
        default=300,
        help="forum topics, each title once (default: %(default)s)",
    )
    demo.add_argument(
        "--posts",
        type=int,
        default=3000,
        help="posts in all, first posts included, so at least --topics (default: %(default)s)",
    )
    demo.add_argument(
        "--conversations",
        type=int,
        default=500,
        help="support conversations in the customers' inboxes, invoice notices included "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=1, help="same seed, same content (default: %(default)s)"
    )
    demo.set_defaults(run=cmd_demo)

    recount = commands.add_parser("recount", help="rebuild the forum's counters from the posts")
    recount.set_defaults(run=cmd_recount)

    import_mail = commands.add_parser(
        "import-mail",
        help="import old mail (mbox, Maildir, folder of .eml) into conversations",
        description="Threads the mail into conversations, creates customer accounts for unknown "
        "senders and sends no notifications. Importing the same mail again changes nothing. "
        "Exit code 1 when some mails could not be imported, 2 when a PATH holds no mail.",
    )
    import_mail.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="an mbox file, a Maildir or a folder of .eml files; give the inbox and the sent "
        "folder together, so that answers are threaded in date order",
    )
    import_mail.set_defaults(run=cmd_import_mail)

    backup = commands.add_parser(
        "backup", help="copy the database, uploads and key to a new folder while the site runs"
    )
    backup.add_argument("path", help="a new (or empty) folder for this backup")
    backup.set_defaults(run=cmd_backup)

    restore = commands.add_parser("restore", help="put a backup in place (server stopped)")
    restore.add_argument("path", help="a folder written by `backup`")
    restore.add_argument(
        "--replace",
        action="store_true",
        help="replace an existing database (kept beside it as board.db.before-restore)",
    )
    restore.set_defaults(run=cmd_restore)

    migrate_to = commands.add_parser(
        "migrate-to", help="copy this SQLite installation to an empty PostgreSQL database"
    )
    migrate_to.add_argument("url", help="postgresql://user:password@host:port/database")
    migrate_to.add_argument(
        "--replace", action="store_true", help="empty a PostgreSQL database that holds data first"
    )
    migrate_to.set_defaults(run=cmd_migrate_to)

    reindex = commands.add_parser("reindex", help="rebuild the search index from the database")
    reindex.set_defaults(run=cmd_reindex)

    outbox = commands.add_parser("outbox", help="list pending and failed mail")
    outbox.add_argument(
        "--retry-failed", action="store_true", help="give failed mail another try first"
    )
    outbox.set_defaults(run=cmd_outbox)

    send_summary = commands.add_parser("send-summary", help="send the daily summary to staff now")
    send_summary.set_defaults(run=cmd_send_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(Settings.from_env(), args)


if __name__ == "__main__":
    sys.exit(main())
