"""Settings: one frozen value read from the BOARD_* environment once."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import time
from pathlib import Path

from board.hours import BusinessHours, parse_days, parse_hours

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_LOCALES = ("de", "en")


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _hour(value: str) -> int:
    hour = int(value)
    if not 0 <= hour <= 23:
        raise ValueError(f"an hour of the day is 0 to 23, not {value}")
    return hour


def _address(variable: str, value: str | None) -> str | None:
    """An email address setting, checked at start: a typo must not silently lose mail."""
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+", value) or len(value) > 320:
        raise ValueError(f"{variable} is not an email address: {value!r}")
    return value.lower()


def _networks(variable: str, value: str | None) -> tuple[str, ...]:
    """Address ranges such as `10.0.0.0/8,127.0.0.1/32`, checked at start."""
    networks = []
    for part in (value or "").split(","):
        if part.strip():
            try:
                networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError as error:
                raise ValueError(f"{variable}: {error}") from None
    return tuple(networks)


def _days(variable: str, value: str, most: float = 365) -> float:
    days = float(value or 0)
    if not 0 <= days <= most:
        raise ValueError(f"{variable} is 0 to {most:g} days, not {value}")
    return days


def _load_or_create_secret(data_dir: Path) -> str:
    """The secret is generated once and kept in the data folder, so restarts keep sessions."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: when two workers start at once, the first one's key wins.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


# Order, invoice and ticket numbers that search matches exactly (BOARD_SEARCH_CODE_PATTERN):
# letters with digits (M4, 4711, RE-2026-0042) or short capitalised words (DHL, UPS).
DEFAULT_CODE_PATTERN = r"(?:[A-Za-z]{0,5}[-/]?)?\d[\w-]*|\b[A-ZÄÖÜ]{2,6}\b"

# Abuse limits: setting name -> (environment variable, default). 0 turns a limit off.
LIMIT_VARIABLES = {
    "login_failures_per_account": ("BOARD_LOGIN_FAILURES_PER_ACCOUNT", 5),
    "login_failures_per_address": ("BOARD_LOGIN_FAILURES_PER_ADDRESS", 20),
    "login_failure_window_seconds": ("BOARD_LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60),
    "registrations_per_hour": ("BOARD_REGISTRATIONS_PER_HOUR", 10),
    "login_mails_per_email": ("BOARD_LOGIN_MAILS_PER_EMAIL", 3),
    "login_mails_per_client": ("BOARD_LOGIN_MAILS_PER_CLIENT", 10),
    "login_codes_per_day": ("BOARD_LOGIN_CODES_PER_DAY", 10),
    "guest_messages_per_hour": ("BOARD_GUEST_MESSAGES_PER_HOUR", 5),
    "guest_searches_per_minute": ("BOARD_GUEST_SEARCHES_PER_MINUTE", 30),
    "guest_suggestions_per_minute": ("BOARD_GUEST_SUGGESTIONS_PER_MINUTE", 120),
}


def _limits(env: Mapping[str, str]) -> dict[str, int]:
    limits = {}
    for name, (variable, default) in LIMIT_VARIABLES.items():
        value = int(env.get(variable) or default)
        if value < 0:
            raise ValueError(f"{variable} is a count, not {value}")
        limits[name] = value
    return limits


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "support@localhost"
    admin_email: str | None = None
    admin_password: str | None = None
    locale: str = "de"
    timezone: str = "Europe/Berlin"
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    flood_seconds: int = 10
    upload_max_mb: int = 20
    # BOARD_UPLOAD_DIR: a folder all machines share (NFS, a mounted volume); unset, the
    # files live in <data>/uploads. Read through `upload_dir`.
    upload_dir_setting: Path | None = None
    upload_types: tuple[str, ...] = ("pdf", "zip", "jpg", "jpeg", "png", "docx", "xlsx", "xls")
    # Abuse limits. Login throttling: failures allowed per window, per account and per
    # client address (the address ProxyHeadersMiddleware derives with forwarded_allow_ips).
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_failure_window_seconds: int = 15 * 60
    registrations_per_hour: int = 10  # new accounts per client address
    # Login codes and reset links mailed per 15 minutes: to one address, and asked for by
    # one client address (each kind counted on its own).
    login_mails_per_email: int = 3
    login_mails_per_client: int = 10
    # Login codes mailed to one address a day. Each code takes 5 wrong guesses, and asking
    # for a new one starts them anew: without this, about 1,440 guesses a day.
    login_codes_per_day: int = 10
    guest_messages_per_hour: int = 5  # contact form messages per client address
    guest_searches_per_minute: int = 30  # guests' searches per client address
    # Suggestions come as a guest types on the contact form, a few seconds apart.
    guest_suggestions_per_minute: int = 120
    # The queue turns a request red after this many business hours of waiting.
    wait_alert_hours: float = 8.0
    stale_pending_days: float = 3.0  # business days without the customer's answer: greyed
    # What the confirmation after sending promises: an answer within this many hours
    # while the shop is open.
    answer_hours: float = 4.0
    business_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    business_hours: tuple[time, time] = (time(9, 0), time(17, 0))
    # Local hours of the daily jobs: the staff summary and the customers' digest.
    summary_hour: int = 7
    digest_hour: int = 17
    # Order, invoice and ticket numbers and short codes that search matches exactly.
    search_code_pattern: str = DEFAULT_CODE_PATTERN
    # This machine's search index among several on one database: the name under which the
    # database remembers how far it has indexed (search_nodes). Its workers share it.
    search_node: str = "localhost"
    # Tells other processes at once that live events were written (redis://… or
    # postgres://…, the `broadcaster` package); unset, they notice within a second.
    broadcast_url: str | None = None
    events_poll_seconds: float = 1.0  # how often each process looks for others' events
    # The first pause before mail that did not go out is tried again (it doubles with each
    # failure, up to 30 times this: 15 minutes), and how long a mail stays with a sender
    # that stopped answering (killed) before another one takes it.
    mail_retry_seconds: float = 30.0
    # A copy of every new-request notice to the team's shared mailbox (BOARD_NOTIFY_CC).
    notify_cc: str | None = None
    # Business days a pending request waits for the customer before one reminder goes out,
    # and as many again before it is solved; 0: never (BOARD_PENDING_REMINDER_DAYS).
    pending_reminder_days: float = 0.0
    # Webhooks reach public addresses only, and these ranges besides (SSRF): e.g. an
    # internal CRM at 10.1.2.3/32 (BOARD_WEBHOOK_ALLOW_NETWORKS).
    webhook_allow_networks: tuple[str, ...] = ()
    # The first pause before a failed delivery is tried again; it doubles each time.
    webhook_retry_seconds: float = 30.0
    # Days a signed link in a doorbell mail opens its one conversation without a password
    # (board/mail_links.py); 0: the mail links to the login page instead.
    mail_link_days: float = 7.0
    topics_per_page: int = 25
    posts_per_page: int = 20
    db_pool_size: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("BOARD_DATA_DIR") or PROJECT_ROOT / "data").resolve()
        host = env.get("BOARD_HOST", "127.0.0.1")
        port = int(env.get("BOARD_PORT", "8000"))
        locale = env.get("BOARD_LOCALE", "de")
        if locale not in SUPPORTED_LOCALES:
            locale = "de"
        settings = cls(
            data_dir=data_dir,
            database_url=env.get("BOARD_DATABASE_URL") or f"sqlite:///{data_dir / 'board.db'}",
            secret_key=env.get("BOARD_SECRET_KEY") or _load_or_create_secret(data_dir),
            host=host,
            port=port,
            base_url=(env.get("BOARD_BASE_URL") or f"http://{host}:{port}").rstrip("/"),
            smtp_host=env.get("BOARD_SMTP_HOST") or None,
            smtp_port=int(env.get("BOARD_SMTP_PORT", "25")),
            smtp_user=env.get("BOARD_SMTP_USER") or None,
            smtp_password=env.get("BOARD_SMTP_PASSWORD") or None,
            smtp_starttls=_flag(env.get("BOARD_SMTP_STARTTLS")),
            mail_from=env.get("BOARD_MAIL_FROM", "support@localhost"),
            admin_email=env.get("BOARD_ADMIN_EMAIL") or None,
            admin_password=env.get("BOARD_ADMIN_PASSWORD") or None,
            locale=locale,
            timezone=env.get("BOARD_TIMEZONE", "Europe/Berlin"),
            forwarded_allow_ips=tuple(
                ip.strip()
                for ip in env.get("BOARD_FORWARDED_ALLOW_IPS", "127.0.0.1").split(",")
                if ip.strip()
            ),
            flood_seconds=int(env.get("BOARD_FLOOD_SECONDS", "10")),
            upload_max_mb=int(env.get("BOARD_UPLOAD_MAX_MB", "20")),
            upload_types=tuple(
                ext.strip().lower().lstrip(".")
                for ext in env.get(
                    "BOARD_UPLOAD_TYPES", "pdf,zip,jpg,jpeg,png,docx,xlsx,xls"
                ).split(",")
                if ext.strip()
            ),
        )
        settings = replace(
            settings,
            wait_alert_hours=float(env.get("BOARD_WAIT_ALERT_HOURS", "8")),
            stale_pending_days=float(env.get("BOARD_STALE_PENDING_DAYS", "3")),
            answer_hours=float(env.get("BOARD_ANSWER_HOURS", "4")),
            business_days=parse_days(env.get("BOARD_BUSINESS_DAYS", "1-5")),
            business_hours=parse_hours(env.get("BOARD_BUSINESS_HOURS", "09:00-17:00")),
            summary_hour=_hour(env.get("BOARD_SUMMARY_HOUR", "7")),
            digest_hour=_hour(env.get("BOARD_DIGEST_HOUR", "17")),
            search_code_pattern=env.get("BOARD_SEARCH_CODE_PATTERN") or DEFAULT_CODE_PATTERN,
            search_node=env.get("BOARD_SEARCH_NODE") or socket.gethostname(),
            broadcast_url=env.get("BOARD_BROADCAST_URL") or None,
            events_poll_seconds=float(env.get("BOARD_EVENTS_POLL_SECONDS", "1")),
            mail_retry_seconds=float(env.get("BOARD_MAIL_RETRY_SECONDS", "30")),
            notify_cc=_address("BOARD_NOTIFY_CC", env.get("BOARD_NOTIFY_CC")),
            pending_reminder_days=_days(
                "BOARD_PENDING_REMINDER_DAYS", env.get("BOARD_PENDING_REMINDER_DAYS", "0")
            ),
            webhook_allow_networks=_networks(
                "BOARD_WEBHOOK_ALLOW_NETWORKS", env.get("BOARD_WEBHOOK_ALLOW_NETWORKS")
            ),
            webhook_retry_seconds=float(env.get("BOARD_WEBHOOK_RETRY_SECONDS", "30")),
            mail_link_days=_days("BOARD_MAIL_LINK_DAYS", env.get("BOARD_MAIL_LINK_DAYS", "7")),
            upload_dir_setting=(
                Path(env["BOARD_UPLOAD_DIR"]).resolve() if env.get("BOARD_UPLOAD_DIR") else None
            ),
            **_limits(env),
        )
        return replace(settings, **overrides) if overrides else settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def upload_dir(self) -> Path:
        """Where attached files are kept, by their SHA-256."""
        return self.upload_dir_setting or self.data_dir / "uploads"

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def office(self) -> BusinessHours:
        """The shop's working week, for waiting times."""
        return BusinessHours(self.timezone, self.business_days, *self.business_hours)

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")
