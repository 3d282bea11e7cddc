"""The customer's side of a request in a real Chromium (issue 23): the status line that
follows a new message, the subject line that shows while typing, and the customer's
pages at desktop and phone sizes in both languages: no sideways scrolling, no axe-core
violations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACTS

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"  # as test_pages_browser


def log_in(page: Page, base: str, login_value: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.locator("#field-login").fill(login_value)
    page.locator("#field-password").fill(password)
    page.locator("main form.stack button[type=submit]").click()


def register(page: Page, base: str, name="Erika Mustermann", email="erika@example.com") -> None:
    page.goto(f"{base}/register")
    page.get_by_label("Name").fill(name)
    page.get_by_label("E-Mail").fill(email)
    page.get_by_label("Passwort").fill("mein-sicheres-passwort")
    page.get_by_role("button", name="Registrieren").click()


def write(page: Page, base: str, text: str) -> str:
    page.goto(f"{base}/inbox/new")
    page.locator("#field-body").fill(text)
    page.get_by_role("button", name="Nachricht senden").click()
    expect(page).to_have_url(re.compile(r"/inbox/\d+$"))
    return page.url.rsplit("/", 1)[1]


def test_the_status_line_follows_a_new_message_without_reload(
    live_server: str, page: Page, browser
):
    base = live_server
    register(page, base)
    number = write(page, base, "Mein Paket mit dem Thermostat ist nicht angekommen.")
    status = page.locator("#conversation-status")
    expect(status).to_have_text("Wartet auf unsere Antwort")

    staff_context = browser.new_context(locale="de-DE")
    staff = staff_context.new_page()
    log_in(staff, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff.goto(f"{base}/staff/t/{number}")
    staff.locator("#field-body").fill("Welche Sendungsnummer steht auf der Rechnung?")
    staff.get_by_role("button", name="Senden", exact=True).click()  # leaves it pending
    expect(staff.locator("#thread .message")).to_have_count(2)

    # The customer's open page, never reloaded: the answer and the status line together.
    expect(page.locator("#thread .message")).to_have_count(2)
    expect(status).to_have_text("Antwort liegt vor")
    expect(status).to_have_class(re.compile(r"\bstatus-pending\b"))

    staff.locator("#field-body").fill("Wir haben es neu verschickt.")
    staff.get_by_role("button", name="Senden und als gelöst markieren").click()
    expect(page.locator("#thread .message")).to_have_count(3)
    expect(status).to_have_text("Erledigt")
    page.screenshot(path=str(ARTIFACTS / "live-status-customer.png"), full_page=True)
    staff_context.close()


# Drafts and the subject the server makes of them (board.markup.subject_from): the page's
# line must show the same.
DRAFTS = [
    "Wo bleibt meine Bestellung 4711?",
    "**Rücksendung** für Bestellung 4711:\n\n" + "Der Pullover ist zu klein. " * 8,
    "# Drucker\n\n- Router *neu* gestartet\n- `reset` versucht\n\n> Zitat mit [Link](https://x.example)",
    "Bild: ![Foto vom Schaden](https://x.example/a.png) und   viele\n\n\n  Leerzeichen",
    "a" * 99 + "👍🏽" + "b" * 10,
    "e\u0301" * 120,
    "```\ncode block\n```\nnach dem Block",
    "| Artikel | Menge |\n|---|---|\n| Kabel | 2 |",
    "snake_case_name und _betont_ und 5 * 3 = 15",
]


def test_typing_a_new_message_shows_its_subject(live_server: str, page: Page):
    from board.markup import subject_from

    register(page, live_server)
    page.goto(f"{live_server}/inbox/new")
    line = page.locator("#subject-preview")
    expect(line).to_be_hidden()
    page.locator("#field-body").press_sequentially("Mein **Paket** ist")
    expect(line).to_have_text("Betreff: Mein Paket ist")
    for draft in DRAFTS:
        subject, cut = subject_from(draft)
        page.locator("#field-body").fill(draft)
        expect(page.locator("#subject-preview-text")).to_have_text(subject + ("…" if cut else ""))
    page.locator("#field-body").fill("")
    expect(line).to_be_hidden()

    # What the line promised is the subject the request gets.
    page.locator("#field-body").fill(DRAFTS[1])
    promised = page.locator("#subject-preview-text").inner_text()
    page.get_by_role("button", name="Nachricht senden").click()
    expect(page.locator("#subject")).to_have_text(promised)


# --- every page this side touches, at desktop and phone sizes, in both languages ----------

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def audit(page: Page, name: str) -> None:
    """No sideways scrolling, no axe-core violations; a screenshot for a person to look at."""
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / f"customer-side-{name}.png"), full_page=True)
    assert width <= inner, f"{name}: {width} px wide in a {inner} px window"
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document)).violations.map(
            (v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", "))"""
    )
    assert violations == [], f"{name}: {violations}"


def test_the_customer_pages_fit_every_screen_and_pass_axe(live_server: str, browser, settings):

    from board.db import conversations, sync_engine

    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server
    setup = browser.new_context(locale="de-DE")
    page = setup.new_page()
    register(page, base)
    numbers = [
        write(page, base, text)
        for text in (
            "Wo bleibt meine Bestellung 4711? Sie sollte schon letzte Woche ankommen.",
            "Passt das Netzteil NT-12 zum Modell M4 aus dem Herbstkatalog?",
            "Bitte schicken Sie die Rechnung an die neue Adresse in Hamburg.",
        )
    ]
    engine = sync_engine(settings)
    with engine.begin() as connection:
        for number, status in zip(numbers[1:], ("pending", "solved")):
            connection.execute(
                conversations.update()
                .where(conversations.c.number == int(number))
                .values(status=status, waiting_since=None)
            )
    engine.dispose()
    cookies = setup.cookies()
    setup.close()

    for size, viewport in SIZES.items():
        for language in ("de", "en"):
            context = browser.new_context(viewport=viewport, bypass_csp=True, locale="de-DE")
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto(f"{base}/inbox")
            page.locator(f'footer button[name="locale"][value="{language}"]').click()
            expect(page.locator("html")).to_have_attribute("lang", language)
            tag = f"{size}-{language}"
            audit(page, f"inbox-{tag}")
            page.goto(f"{base}/inbox?status=open&q=Netzteil")
            audit(page, f"inbox-open-{tag}")
            page.goto(f"{base}/inbox/{numbers[1]}")
            expect(page.locator(".mark-done")).to_be_visible()
            audit(page, f"conversation-pending-{tag}")
            page.goto(f"{base}/inbox/{numbers[2]}")
            audit(page, f"conversation-solved-{tag}")
            page.goto(f"{base}/inbox/new")
            page.locator("#field-body").fill("Mein **Paket** ist beschädigt angekommen. " * 4)
            expect(page.locator("#subject-preview")).to_be_visible()
            audit(page, f"new-message-{tag}")
            page.get_by_role("button", name=re.compile("Nachricht senden|Send message")).click()
            expect(page.locator("#sent-notice")).to_be_visible()
            audit(page, f"sent-{tag}")
            page.goto(f"{base}/notifications")
            audit(page, f"notifications-{tag}")
            context.close()

            guest = browser.new_context(viewport=viewport, bypass_csp=True, locale=language)
            page = guest.new_page()
            page.goto(f"{base}/contact")
            page.locator("#field-body").fill("Liefern Sie auch nach Österreich?")
            expect(page.locator("#subject-preview")).to_be_visible()
            audit(page, f"contact-{tag}")
            page.goto(f"{base}/login")
            audit(page, f"login-{tag}")
            guest.close()
