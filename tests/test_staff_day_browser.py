"""A staff day in a real Chromium, in German: the admin pins instructions and a banner for
visitors, Sven names his deputy and his usual hours, a customer's request is his, he is
away from today, the deputy finds the request in her queue with its history, looks the
customer up by her customer number, answers with the canned reply the instructions name
(its placeholders filled before sending), and Sven, back, sees what was handed over and
dismisses the notice.

Add the steps of later staff features to this day rather than starting another."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from board.db import sync_engine, users
from board.setup import create_staff
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACTS

pytestmark = pytest.mark.e2e

SVEN_EMAIL, SVEN_PASSWORD = "sven@shop.example", "sven-passwort-1"


def log_in(page: Page, base: str, login_value: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.locator("#field-login").fill(login_value)
    page.locator("#field-password").fill(password)
    page.locator("main form.stack button[type=submit]").click()
    expect(page.locator(".whoami")).to_be_visible()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"staff-day-{name}.png"), full_page=True)


def test_a_day_an_absent_colleagues_work_goes_to_the_deputy(
    browser: Browser, live_server: str, settings
):
    base = live_server
    engine = sync_engine(settings)
    with engine.begin() as connection:
        create_staff(connection, SVEN_EMAIL, "Sven Support", password=SVEN_PASSWORD)
    engine.dispose()
    contexts = [browser.new_context(locale="de-DE") for _ in range(4)]
    admin, sven, customer, guest = (context.new_page() for context in contexts)
    try:
        # Morning: the admin pins the day's instructions and a line for visitors.
        log_in(admin, base, ADMIN_EMAIL, ADMIN_PASSWORD)
        admin.goto(f"{base}/staff/notices")
        admin.get_by_label("Hinweise für das Team").fill(
            "**Lieferverzug** bei Artikel X — Textbaustein `#verzug` nutzen"
        )
        admin.get_by_label("Banner für Besucher (optional)").fill("Telefon heute nicht erreichbar")
        admin.get_by_role("button", name="Speichern").click()
        expect(admin).to_have_url(re.compile(r"/staff/home$"))
        expect(admin.locator("#notice-board strong")).to_have_text("Lieferverzug")

        guest.goto(f"{base}/")
        expect(guest.locator("#site-banner")).to_have_text("Telefon heute nicht erreichbar")
        guest.goto(f"{base}/contact")
        expect(guest.locator("#site-banner")).to_have_text("Telefon heute nicht erreichbar")

        # Sven names the admin as his deputy and says when he is usually there.
        log_in(sven, base, SVEN_EMAIL, SVEN_PASSWORD)
        expect(sven.locator("#notice-board")).to_contain_text("Lieferverzug bei Artikel X")
        sven.goto(f"{base}/staff/team")
        sven.get_by_label("Ihre Vertretung").select_option(label="Administrator")
        sven.get_by_label("Wann Sie meistens da sind (optional)").fill("Mo–Mi vormittags")
        sven.get_by_role("button", name="Vertretung und Hinweis speichern").click()
        expect(sven.locator("#team")).to_contain_text("Mo–Mi vormittags")
        expect(sven.locator("#team")).to_contain_text("Vertretung: Administrator")

        # A customer writes; the admin gives the request to Sven, his hours beside his name.
        customer.goto(f"{base}/register")
        customer.get_by_label("Name").fill("Erika Mustermann")
        customer.get_by_label("E-Mail").fill("erika@example.com")
        customer.get_by_label("Passwort").fill("mein-sicheres-passwort")
        customer.get_by_role("button", name="Registrieren").click()
        customer.goto(f"{base}/inbox/new")
        customer.locator("#field-body").fill("Wo bleibt mein Artikel X? Bestellung 4711.")
        customer.get_by_role("button", name="Nachricht senden").click()
        expect(customer).to_have_url(re.compile(r"/inbox/\d+$"))
        number = customer.url.rsplit("/", 1)[1]

        admin.goto(f"{base}/staff/t/{number}")
        assignee = admin.locator("#update-assignee")
        expect(assignee.locator("option", has_text="Sven Support")).to_have_text(
            re.compile(r"Sven Support.*\(Mo–Mi vormittags\)")
        )
        assignee.select_option(label="Sven Support (Mo–Mi vormittags)")
        admin.locator(".update-form").get_by_role("button", name="Speichern").click()
        expect(admin.locator("#history")).to_contain_text("Sven Support")

        # Sven is away from today: his request goes to his deputy at once.
        today = datetime.now(ZoneInfo(settings.timezone)).date().isoformat()
        sven.goto(f"{base}/staff/team")
        sven.get_by_label("Erster Tag").fill(today)
        sven.get_by_label("Letzter Tag").fill(today)
        sven.get_by_role("button", name="Abwesenheit speichern").click()
        expect(sven.locator("#team")).to_contain_text("Abwesend bis")

        mine = f"{base}/staff?status=open&assigned=me"
        admin.goto(mine)
        for _ in range(20):  # the job runs beside the request: a moment, then reload
            if admin.locator(f"a[href='/staff/t/{number}']").count():
                break
            admin.wait_for_timeout(250)
            admin.goto(mine)
        expect(admin.locator(f"#queue-list a[href='/staff/t/{number}']")).to_be_visible()
        expect(admin.locator("#notice-board")).to_contain_text("Lieferverzug")
        admin.goto(f"{base}/staff/t/{number}")
        expect(admin.locator("#history")).to_contain_text(
            "wegen Abwesenheit übergeben Sven Support → Administrator"
        )
        shot(admin, "deputy-conversation")

        # The customer calls and gives her customer number: the deputy finds her by it.
        engine = sync_engine(settings)
        with engine.connect() as connection:
            customer_number = connection.execute(
                sa.select(users.c.customer_number).where(users.c.email == "erika@example.com")
            ).scalar_one()
        engine.dispose()
        admin.goto(f"{base}/staff/customers")
        admin.locator("#customers-q").fill(str(customer_number))
        admin.locator("#customers-q").press("Enter")
        rows = admin.locator("tr.customer-row")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("Erika Mustermann")
        rows.get_by_role("link").first.click()
        expect(admin.locator("main")).to_contain_text(f"#{number}")

        # The instructions name a canned reply: the deputy writes it once and answers with it,
        # the customer's first name, order, ticket and her own name filled in before sending.
        admin.goto(f"{base}/staff/replies")
        admin.get_by_label("Kürzel (ohne #)").fill("verzug")
        admin.get_by_label("Titel").fill("Lieferverzug")
        admin.get_by_label("Text").fill(
            "Hallo {vorname},\nIhre Bestellung {order} ({ticket}) kommt leider später.\n{agent}"
        )
        admin.get_by_role("button", name="Speichern").click()
        admin.goto(f"{base}/staff/t/{number}")
        box = admin.locator("#field-body")
        box.click()
        admin.keyboard.type("#verz")
        expect(admin.locator("#canned-menu")).to_contain_text("Lieferverzug")
        admin.keyboard.press("Enter")
        expect(box).to_have_value(
            f"Hallo Erika,\nIhre Bestellung 4711 (#{number}) kommt leider später.\nAdministrator"
        )
        admin.get_by_role("button", name="Senden", exact=True).click()
        expect(admin.locator(".thread")).to_contain_text("kommt leider später")
        customer.goto(f"{base}/inbox/{number}")
        expect(customer.locator(".thread")).to_contain_text("Hallo Erika,")

        # Sven, back, sees what was handed over and puts the notice away.
        sven.goto(f"{base}/staff/home")
        notice = sven.locator("#handed-over")
        expect(notice).to_contain_text("Während Ihrer Abwesenheit wurde 1 Anfrage übergeben")
        expect(notice).to_contain_text(f"#{number}")
        expect(notice).to_contain_text("an Administrator")
        shot(sven, "returning-home")
        notice.get_by_role("button", name="Verstanden, ausblenden").click()
        expect(sven.locator("#handed-over")).to_have_count(0)
        sven.goto(f"{base}/staff")
        expect(sven.locator("#handed-over")).to_have_count(0)

        # Evening: the phone works again, the banner goes, for guests at once.
        admin.goto(f"{base}/staff/notices")
        admin.get_by_label("Banner für Besucher (optional)").fill("")
        admin.get_by_role("button", name="Speichern").click()
        guest.goto(f"{base}/")
        expect(guest.locator("#site-banner")).to_have_count(0)
    finally:
        for context in contexts:
            context.close()
