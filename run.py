"""Start Supportboard: migrate, create the first admin on an empty database, then serve."""

from __future__ import annotations

import argparse
import os
import signal
from types import FrameType

import uvicorn

from board.__main__ import print_admin
from board.config import Settings
from board.setup import initialize


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(
            "Start the Supportboard web server. The first start creates the database, "
            "the staff admin and the default forum categories in BOARD_DATA_DIR. "
            "All settings come from BOARD_* environment variables (see README.md); "
            "the options below override host, port and workers."
        )
    )
    parser.add_argument("--host", help="address to listen on (BOARD_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (BOARD_PORT, default 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (default 1)"
    )
    parser.add_argument("--reload", action="store_true", help="restart on code changes")
    args = parser.parse_args()

    if args.host:
        os.environ["BOARD_HOST"] = args.host
    if args.port:
        os.environ["BOARD_PORT"] = str(args.port)
    settings = Settings.from_env()
    admin = initialize(settings)
    if admin is not None:
        print_admin(admin, settings)
    print(f"Supportboard serves {settings.base_url}")
    # uvicorn finishes the requests in flight on SIGTERM and then raises the signal again
    # "for the parent": with the default action that ends the process as killed (-15),
    # which service managers and scripts count as a failure. Raised here, it ends with 0.
    signal.signal(signal.SIGTERM, _stop)
    uvicorn.run(
        "board.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        reload=args.reload,
        # The app applies BOARD_FORWARDED_ALLOW_IPS itself (the same in tests and behind uvicorn).
        proxy_headers=False,
        access_log=False,
        log_level="info",
    )


if __name__ == "__main__":
    main()
