"""Who the demo is about: its staff, the password of every demo account, mail addresses."""

from __future__ import annotations

import random
import unicodedata

# Every demo account (customers and the demo staff) logs in with this password.
DEMO_PASSWORD = "demo-passwort"

DEMO_STAFF = (
    ("Julia Brandt", "julia.brandt@shop.example"),
    ("Tobias Keller", "tobias.keller@shop.example"),
    ("Selin Aydin", "selin.aydin@shop.example"),
)

# Reserved domains (RFC 2606): demo accounts must never receive real mail.
MAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "post.example")


def _ascii(text: str) -> str:
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("ı", "i")):
        text = text.replace(umlaut, spelled)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in text if char.isalnum() or char in ".-")


def email_address(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    """A new address for the name at a reserved domain; adds it to `taken`."""
    first, last = _ascii(first.lower()), _ascii(last.lower())
    local = rng.choice(
        (f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}", f"{last}.{first}")
    )
    domain = rng.choice(MAIL_DOMAINS)
    email = f"{local}@{domain}"
    while email in taken:
        email = f"{local}{rng.randint(1, 9999)}@{domain}"
    taken.add(email)
    return email
