""" "Support is writing …" in two real Chromium pages: staff type, the customer's open
conversation says so and forgets it a few seconds later; an internal note says nothing.
Also through the mail link, where the customer is not logged in."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from board.db import mail_links, sync_engine
from board.mail_links import token_for
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACTS
from tests.test_browser import log_in, register

pytestmark = pytest.mark.e2e


def staff_page(browser, base: str, number: str) -> Page:
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    log_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(f"{base}/staff/t/{number}")
    return page


def type_slowly(page: Page, text: str) -> None:
    page.locator("#field-body").press_sequentially(text, delay=40)


def test_the_customer_sees_support_writing_and_it_goes_again(live_server: str, page, browser):
    register(page, live_server)
    page.goto(f"{live_server}/inbox/new")
    page.get_by_label("Ihre Nachricht").fill("Passt das Netzteil auch an das ältere Modell?")
    page.get_by_role("button", name="Nachricht senden").click()
    number = page.locator("#ticket-number").inner_text().lstrip("#")
    hint = page.locator("#answering-hint")
    expect(hint).to_be_hidden()

    staff = staff_page(browser, live_server, number)
    # An internal note: colleagues may see it, the customer sees nothing.
    staff.locator("#field-internal").check()
    type_slowly(staff, "Notiz: beim Lieferanten nachfragen.")
    page.wait_for_timeout(2500)
    expect(hint).to_be_hidden()

    # An answer: "Support schreibt gerade …" while staff type.
    staff.locator("#field-internal").uncheck()
    staff.wait_for_timeout(4200)  # the compose box sends one sign per 4 s
    type_slowly(staff, " Ja, es passt.")
    expect(hint).to_be_visible(timeout=5000)
    expect(hint).to_have_text("Support schreibt gerade …")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "support-writing.png"), full_page=True)
    # Staff stop typing: the line goes after a few seconds, without a reload.
    expect(hint).to_be_hidden(timeout=12000)
    staff.context.close()


def test_the_mail_link_page_sees_support_writing_too(live_server: str, page, browser, settings):
    register(page, live_server)
    page.goto(f"{live_server}/inbox/new")
    page.get_by_label("Ihre Nachricht").fill("Wann wird meine Bestellung verschickt?")
    page.get_by_role("button", name="Nachricht senden").click()
    number = page.locator("#ticket-number").inner_text().lstrip("#")
    staff = staff_page(browser, live_server, number)
    staff.locator("#field-body").fill("Morgen früh.")
    staff.get_by_role("button", name="Senden", exact=True).click()
    expect(staff.locator(".thread .message")).to_have_count(2)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        link_id = connection.execute(sa.select(sa.func.max(mail_links.c.id))).scalar_one()
    engine.dispose()

    phone = browser.new_context(locale="de-DE").new_page()  # nobody logged in there
    phone.goto(f"{live_server}/m/{token_for(settings.secret_key, link_id)}")
    expect(phone.locator("#mail-link-notice")).to_be_visible()
    expect(phone.locator(".thread")).to_contain_text("Morgen früh.")
    staff.wait_for_timeout(4200)  # filling the answer above sent a sign: one per 4 s
    type_slowly(staff, "Und noch etwas:")
    expect(phone.locator("#answering-hint")).to_be_visible(timeout=5000)
    # The answer through the link appears on the staff's open page.
    phone.locator("#field-body").fill("Danke, das passt.")
    phone.get_by_role("button", name="Antwort senden").click()
    expect(phone.locator(".thread .message")).to_have_count(3)
    expect(staff.locator(".thread")).to_contain_text("Danke, das passt.", timeout=5000)
    phone.context.close()
    staff.context.close()
