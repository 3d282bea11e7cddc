"""The rules a new password must meet: a length, and not one of the most common passwords."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from board.i18n import gettext as _

PASSWORD_MIN, PASSWORD_MAX = 10, 1000
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    """Read once from the file shipped in the package; no network at run time."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def is_common(password: str) -> bool:
    # Lowercased as the list is: "Password123" is guessed as early as "password123".
    return password.strip().lower() in common_passwords()


def password_problem(password: str) -> str | None:
    """Length and commonness only: composition rules make passwords weaker, not stronger."""
    if len(password) < PASSWORD_MIN:
        return _("The password needs at least %(count)s characters.", count=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return _("The password may have at most %(count)s characters.", count=PASSWORD_MAX)
    if is_common(password):
        return _("This password is one of the most common ones. Please choose another.")
    return None
