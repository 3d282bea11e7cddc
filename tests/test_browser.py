"""What a person does with the pages, in a real Chromium (Playwright) against real uvicorn."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACTS

pytestmark = pytest.mark.e2e


def log_in(page: Page, base: str, login_value: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Kundennummer oder E-Mail").fill(login_value)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Anmelden").click()


def test_customer_registers_writes_markdown_and_staff_locks_the_topic(
    live_server: str, page: Page, browser
):
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server

    # Register; the header shows the new customer number.
    page.goto(f"{base}/register")
    page.get_by_label("Name").fill("Erika Mustermann")
    page.get_by_label("E-Mail").fill("erika@example.com")
    page.get_by_label("Passwort").fill("mein-sicheres-passwort")
    page.get_by_role("button", name="Registrieren").click()
    expect(page.locator("#customer-number")).to_contain_text("10001")

    # Log out, log back in with the customer number.
    page.get_by_role("button", name="Abmelden").click()
    expect(page.locator("#customer-number")).to_have_count(0)
    log_in(page, base, "10001", "mein-sicheres-passwort")
    expect(page.locator("#customer-number")).to_contain_text("10001")

    # Open a topic with markdown and see it rendered.
    page.get_by_role("link", name="Technik & Fragen").first.click()
    page.get_by_label("Titel").fill("Drucker verbindet sich nicht")
    page.get_by_label("Ihr Text").fill(
        "Mein Drucker **M4** findet das WLAN nicht.\n\n- Router neu gestartet\n- `reset` versucht"
    )
    page.get_by_role("button", name="Thema veröffentlichen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Drucker verbindet sich nicht")
    expect(page.locator(".post-body strong")).to_have_text("M4")
    expect(page.locator(".post-body li")).to_have_count(2)
    topic_url = page.url

    # Reply.
    page.get_by_label("Ihre Antwort").fill("Nachtrag: Firmware ist *aktuell*.")
    page.get_by_role("button", name="Antwort senden").click()
    expect(page.locator(".post-body em")).to_have_text("aktuell")
    expect(page.locator("article.post")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "forum-topic-customer.png"), full_page=True)

    # Staff locks the topic in their own browser session.
    staff_context = browser.new_context()
    staff_page = staff_context.new_page()
    log_in(staff_page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff_page.goto(topic_url)
    staff_page.get_by_role("button", name="Sperren").click()
    expect(staff_page.locator("#locked-badge")).to_be_visible()
    staff_context.close()

    # The customer's reply box is gone; the topic says it is locked.
    page.reload()
    expect(page.locator("#locked-badge")).to_have_text("Gesperrt")
    expect(page.locator("#reply-form")).to_have_count(0)
    expect(page.locator("#locked-notice")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "forum-topic-locked.png"), full_page=True)
    assert re.search(r"/t/\d+", page.url)


def test_phone_layout_keeps_the_forum_readable(live_server: str, browser):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(f"{live_server}/t/1")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the page scrolls sideways on a phone"
    expect(page.locator("article.post .author-name")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "forum-topic-phone.png"), full_page=True)
    context.close()


def test_keyboard_user_can_skip_to_content(live_server: str, page: Page):
    page.goto(live_server)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Zum Inhalt springen")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
