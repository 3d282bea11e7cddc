"""The main pages in a real Chromium, on demo content, on a desktop and on a phone: no
axe-core violation, nothing wider than the window, and the layout a person sees (room
around the content, a one-row staff header, readable figures).

axe-core is vendored in tests/vendor/axe.min.js (MPL 2.0, its licence header kept) and
injected into each page by a context that bypasses the CSP: the site itself allows no
foreign script."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from board.db import (
    absences,
    categories,
    close_database,
    conversations,
    mail_links,
    make_database,
    notices,
    sync_engine,
    topics,
    users,
    utcnow,
    webhook_deliveries,
    webhooks,
)
from board.demo import DEMO_PASSWORD, DEMO_STAFF, fill_demo
from board.mail_links import token_for
from board.search.indexing import rebuild
from board.staff.handover import hand_over_due
from board.webhooks import seal
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACTS

pytestmark = pytest.mark.e2e

AXE = (Path(__file__).resolve().parent / "vendor" / "axe.min.js").read_text()
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture
def demo_site(settings, live_server) -> Iterator[dict]:
    """Demo content behind the live server, and where its pages are."""
    fill_demo(settings, customers=12, topics=8, posts=40, conversations=120, seed=23)
    rebuild(settings)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        slug = connection.execute(
            sa.select(categories.c.slug)
            .join(topics, topics.c.category_id == categories.c.id)
            .order_by(categories.c.position)
            .limit(1)
        ).scalar_one()
        topic_id = connection.execute(
            sa.select(topics.c.id).order_by(topics.c.post_count.desc()).limit(1)
        ).scalar_one()
        # The customer with the most conversations, invoices among them.
        busiest = (
            sa.select(conversations.c.customer_id, sa.func.count().label("count"))
            .where(conversations.c.customer_id.is_not(None))
            .group_by(conversations.c.customer_id)
            .order_by(sa.desc("count"))
            .limit(1)
            .subquery()
        )
        customer_id, customer_email = connection.execute(
            sa.select(users.c.id, users.c.email).join(busiest, busiest.c.customer_id == users.c.id)
        ).one()
        number = connection.execute(
            sa.select(conversations.c.number)
            .where(conversations.c.customer_id == customer_id)
            .order_by(conversations.c.number)
            .limit(1)
        ).scalar_one()
    engine.dispose()
    yield {
        "base": live_server,
        "category": f"/c/{slug}",
        "topic": f"/t/{topic_id}",
        "customer": customer_email,
        "number": number,
    }


def log_in(page: Page, base: str, login: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Kundennummer oder E-Mail").fill(login)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.locator(".whoami")).to_be_visible()


def audit(page: Page, name: str) -> None:
    """No axe-core violation and no sideways scrolling on the open page."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"pages-{name}.png"), full_page=True)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll("body *")]
                .filter((element) => element.getBoundingClientRect().right > innerWidth)
                .slice(-5).map((element) => element.outerHTML.slice(0, 120))"""
        )
        pytest.fail(f"{name}: the page is {width[0]} px wide in {width[1]} px: {wide}")
    page.add_script_tag(content=AXE)
    violations = page.evaluate(
        """async () => (await axe.run(document)).violations.map((v) => `${v.id} (${v.impact}): `
            + v.nodes.slice(0, 3).map((node) => node.target.join(" ")).join(", "))"""
    )
    assert violations == [], f"{name}: {violations}"


def audit_pages(
    browser: Browser, site: dict, who: str, paths: list[str], sizes=tuple(VIEWPORTS)
) -> None:
    for size in sizes:
        viewport = VIEWPORTS[size]
        context = browser.new_context(viewport=viewport, locale="de-DE", bypass_csp=True)
        page = context.new_page()
        try:
            if who == "customer":
                log_in(page, site["base"], site["customer"], DEMO_PASSWORD)
            elif who == "staff":
                log_in(page, site["base"], DEMO_STAFF[0][1], DEMO_PASSWORD)
            elif who == "admin":
                log_in(page, site["base"], ADMIN_EMAIL, ADMIN_PASSWORD)
            for path in paths:
                page.goto(site["base"] + path)
                slug = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-")
                audit(page, f"{who}-{size}-{slug or 'index'}")
        finally:
            context.close()


def test_a_guests_pages_pass_axe_and_fit_the_screen(browser: Browser, demo_site: dict):
    paths = ["/", demo_site["category"], demo_site["topic"], "/search?q=Lieferung"]
    audit_pages(browser, demo_site, "guest", [*paths, "/login", "/contact"])


def test_a_customers_pages_pass_axe_and_fit_the_screen(browser: Browser, demo_site: dict):
    number = demo_site["number"]
    paths = ["/inbox", f"/inbox/{number}", "/inbox/new", "/notifications"]
    audit_pages(browser, demo_site, "customer", paths)


def test_a_mail_links_pages_pass_axe_and_fit_the_screen(
    browser: Browser, demo_site: dict, settings
):
    """The conversation opened through a doorbell mail's link, nobody logged in; a link
    that no longer works; and the account page where the customer ends such links."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        conversation_id, customer_id = connection.execute(
            sa.select(conversations.c.id, conversations.c.customer_id).where(
                conversations.c.number == demo_site["number"]
            )
        ).one()
        working, revoked = (
            connection.execute(
                mail_links.insert()
                .values(
                    conversation_id=conversation_id,
                    user_id=customer_id,
                    created_at=utcnow(),
                    revoked_at=revoked_at,
                )
                .returning(mail_links.c.id)
            ).scalar_one()
            for revoked_at in (None, utcnow())
        )
    engine.dispose()
    links = [f"/m/{token_for(settings.secret_key, link)}" for link in (working, revoked)]
    audit_pages(browser, demo_site, "guest", links)
    audit_pages(browser, demo_site, "customer", ["/account"])


def test_staff_pages_pass_axe_and_fit_the_screen(browser: Browser, demo_site: dict):
    audit_pages(
        browser, demo_site, "staff", ["/staff", "/staff/stats", "/staff/stats/conversations"]
    )
    audit_pages(browser, demo_site, "staff", [f"/staff/t/{demo_site['number']}"], ["desktop"])


@pytest.fixture
def notices_and_handover(demo_site: dict, settings) -> dict:
    """The notice board and the banner written, and the first demo staff member's work
    handed over for an absence that has begun: every absence-cover piece on screen."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        for name, body, html in (
            ("staff", "**Lieferverzug** bei Artikel X", "<p><strong>Lieferverzug</strong></p>"),
            ("banner", "Telefon heute nicht erreichbar", ""),
        ):
            connection.execute(
                notices.update().where(notices.c.name == name).values(body=body, body_html=html)
            )
        staff_id = connection.execute(
            sa.select(users.c.id).where(users.c.email == DEMO_STAFF[0][1])
        ).scalar_one()
        connection.execute(
            users.update()
            .where(users.c.id == staff_id)
            .values(availability_note="Mo–Mi vormittags")
        )
        now = utcnow()
        connection.execute(
            absences.insert().values(
                user_id=staff_id,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=1),
                created_at=now,
            )
        )
    engine.dispose()

    async def hand_over() -> None:
        database = make_database(settings)
        await database.connect()
        try:
            await hand_over_due(database)
        finally:
            await close_database(database)

    # On a thread of its own: this process's main thread may hold Playwright's loop.
    worker = threading.Thread(target=asyncio.run, args=(hand_over(),))
    worker.start()
    worker.join()
    return demo_site


def test_absence_cover_and_notice_pages_pass_axe_and_fit_the_screen(
    browser: Browser, notices_and_handover: dict
):
    site = notices_and_handover
    audit_pages(browser, site, "staff", ["/staff/home", "/staff", "/staff/team"])
    audit_pages(browser, site, "guest", ["/", "/contact"])
    audit_pages(browser, site, "admin", ["/staff/notices", "/staff/team"])


def test_the_webhooks_page_passes_axe_and_fits_the_screen(
    browser: Browser, demo_site: dict, settings
):
    """With a long URL, a delivery of each state and a long error; then the answer that
    shows a new webhook's secret, reached through the form."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        long_url = "https://crm.shop.example/api/v2/hooks/supportboard/" + "x" * 120
        hook = connection.execute(
            webhooks.insert()
            .values(url=long_url, secret=seal(settings, "s" * 64), created_at=utcnow())
            .returning(webhooks.c.id)
        ).scalar_one()
        now = utcnow()
        # One executemany: every row names the same columns.
        base = {
            "webhook_id": hook,
            "payload": "{}",
            "created_at": now,
            "next_attempt_at": now,
            "last_status": None,
            "last_error": None,
            "delivered_at": None,
            "failed_at": None,
        }
        connection.execute(
            webhook_deliveries.insert(),
            [
                {
                    **base,
                    "event": "conversation.created",
                    "attempts": 1,
                    "last_status": 200,
                    "delivered_at": now,
                },
                {
                    **base,
                    "event": "conversation.solved",
                    "attempts": 8,
                    "failed_at": now,
                    "last_error": "ConnectionRefusedError: [Errno 111] Connect call failed " * 3,
                },
                {
                    **base,
                    "event": "conversation.answered",
                    "attempts": 2,
                    "last_status": 503,
                    "last_error": "HTTP 503",
                },
            ],
        )
    engine.dispose()
    audit_pages(browser, demo_site, "admin", ["/staff/webhooks"])
    context = browser.new_context(viewport=PHONE, locale="de-DE", bypass_csp=True)
    page = context.new_page()
    try:
        log_in(page, demo_site["base"], ADMIN_EMAIL, ADMIN_PASSWORD)
        page.goto(demo_site["base"] + "/staff/webhooks")
        page.get_by_label("URL").fill("https://93.184.215.14/crm/hooks")
        page.get_by_role("button", name="Webhook hinzufügen").click()
        expect(page.locator("code.webhook-secret")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
        audit(page, "admin-phone-webhook-secret")
    finally:
        context.close()


def test_the_staff_conversation_passes_axe_and_fits_a_phone(browser: Browser, demo_site: dict):
    audit_pages(browser, demo_site, "staff", [f"/staff/t/{demo_site['number']}"], ["phone"])


def test_content_keeps_its_distance_from_header_and_footer(browser: Browser, demo_site: dict):
    """The first line does not touch the header, nor the page's last control the footer
    (the category page is longer than the window: its end meets the footer)."""
    for viewport in (DESKTOP, PHONE):
        context = browser.new_context(viewport=viewport, locale="de-DE")
        page = context.new_page()
        page.goto(demo_site["base"] + demo_site["category"])
        gaps = page.evaluate(
            """() => {
                const box = (element) => element.getBoundingClientRect();
                const main = document.querySelector("main");
                const shown = [...main.querySelectorAll("*")].filter((e) => box(e).height > 0);
                const highest = Math.min(...shown.map((element) => box(element).top));
                const lowest = Math.max(...shown.map((element) => box(element).bottom));
                return {
                    top: highest - box(document.querySelector(".site-header")).bottom,
                    bottom: box(document.querySelector(".site-footer")).top - lowest,
                };
            }"""
        )
        assert gaps["top"] >= 24, gaps
        assert gaps["bottom"] >= 32, gaps
        context.close()


def header_links(page: Page) -> dict:
    return page.evaluate(
        """() => {
            const header = document.querySelector(".site-header").getBoundingClientRect();
            const links = [...document.querySelectorAll(
                ".site-header .header-row > * a, .site-header .header-row > * button")]
                .filter((element) => !element.closest(".bell-panel"))
                .map((element) => element.getBoundingClientRect());
            return {
                height: header.height,
                tops: [...new Set(document.querySelectorAll(".main-nav a").values()
                    .map((link) => Math.round(link.getBoundingClientRect().top)))],
                outside: links.filter((box) => box.bottom > header.bottom
                    || box.right > header.right || box.left < header.left).length,
            };
        }"""
    )


@pytest.mark.parametrize("language", ["de-DE", "en-GB"])
def test_the_staff_header_is_one_row_on_a_laptop_and_holds_its_links_on_a_phone(
    browser: Browser, demo_site: dict, language: str
):
    for viewport in (DESKTOP, PHONE):
        context = browser.new_context(viewport=viewport, locale=language)
        page = context.new_page()
        page.goto(demo_site["base"] + "/login")
        page.locator("#field-login").fill(DEMO_STAFF[0][1])
        page.locator("#field-password").fill(DEMO_PASSWORD)
        page.locator("main form button[type=submit]").click()
        page.goto(demo_site["base"] + "/staff")
        found = header_links(page)
        assert found["outside"] == 0, found  # none spills out of the dark band
        if viewport is DESKTOP:
            assert len(found["tops"]) == 1, found  # the seven links side by side
            assert found["height"] <= 64, found
        else:
            assert found["height"] <= 240, found
        context.close()


def test_links_are_told_by_colour_and_the_focus_ring_shows(browser: Browser, demo_site: dict):
    """Calm: links outside running text carry no underline (hover gives one); inside a post
    they keep it. The keyboard focus is a ring in the accent colour, as wide as 3 px."""
    context = browser.new_context(viewport=DESKTOP, locale="de-DE")
    page = context.new_page()
    page.goto(demo_site["base"] + "/")

    def decoration(selector: str) -> str:
        return page.locator(selector).first.evaluate(
            "(element) => getComputedStyle(element).textDecorationLine"
        )

    assert decoration("a.category-name") == "none"
    page.locator("a.category-name").first.hover()
    assert decoration("a.category-name") == "underline"
    assert decoration(".main-nav a") == "none"
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand
    ring = page.evaluate(
        """() => { const style = getComputedStyle(document.activeElement);
            return [style.outlineStyle, style.outlineWidth]; }"""
    )
    assert ring == ["solid", "3px"], ring
    page.goto(demo_site["base"] + "/contact")
    assert decoration(".house-rules li a") == "underline"
    context.close()


def test_request_types_and_team_pages_pass_axe_and_fit_the_screen(
    browser: Browser, demo_site: dict
):
    audit_pages(browser, demo_site, "staff", ["/staff/types", "/staff/team"])


# --- the new-message page (/inbox/new, /contact) ------------------------------------------


def box(page: Page, selector: str) -> dict:
    return page.locator(selector).bounding_box()


def a_draft_the_forum_answers(settings) -> str:
    """A draft naming the busiest demo topic's title, long enough for suggestions."""
    engine = sync_engine(settings)
    with engine.connect() as connection:
        title = connection.execute(
            sa.select(topics.c.title).order_by(topics.c.post_count.desc()).limit(1)
        ).scalar_one()
    engine.dispose()
    return f"Ich habe eine Frage: {title}"


@pytest.mark.parametrize("who", ["customer", "guest"])
def test_suggestions_sit_beside_the_text_box_and_the_send_button_stays_put(
    browser: Browser, demo_site: dict, settings, who: str
):
    context = browser.new_context(viewport=DESKTOP, locale="de-DE")
    page = context.new_page()
    try:
        if who == "customer":
            log_in(page, demo_site["base"], demo_site["customer"], DEMO_PASSWORD)
            page.goto(demo_site["base"] + "/inbox/new")
        else:
            page.goto(demo_site["base"] + "/contact")
        suggestions = page.locator("#suggestions")
        expect(suggestions).to_be_hidden()
        button_before = box(page, "#send-button")
        page.locator("#field-body").press_sequentially(a_draft_the_forum_answers(settings))
        expect(suggestions.locator("li a").first).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"new-message-beside-{who}.png"), full_page=True)
        text_box, shown = box(page, "#field-body"), box(page, "#suggestions")
        # Beside: right of the text box, level with it, within the window.
        assert shown["x"] >= text_box["x"] + text_box["width"], (shown, text_box)
        assert shown["y"] < text_box["y"] + text_box["height"], (shown, text_box)
        assert shown["x"] + shown["width"] <= DESKTOP["width"]
        button_after = box(page, "#send-button")
        assert abs(button_after["y"] - button_before["y"]) < 1, (button_before, button_after)
        assert abs(button_after["x"] - button_before["x"]) < 1, (button_before, button_after)
    finally:
        context.close()


def test_the_text_box_is_on_a_phones_first_screen(browser: Browser, demo_site: dict, settings):
    """Customers who wrote before (house rules folded) and first-time guests (open)."""
    context = browser.new_context(viewport=PHONE, locale="de-DE")
    page = context.new_page()
    try:
        page.goto(demo_site["base"] + "/contact")
        expect(page.locator("#house-rules")).to_have_attribute("open", "")
        # Its top and a good part of it (6 rem): enough to see where to write.
        assert box(page, "#field-body")["y"] + 96 <= PHONE["height"]
        page.screenshot(path=str(ARTIFACTS / "new-message-phone-guest.png"), full_page=False)
        log_in(page, demo_site["base"], demo_site["customer"], DEMO_PASSWORD)
        page.goto(demo_site["base"] + "/inbox/new")
        expect(page.locator("#house-rules")).not_to_have_attribute("open", "")
        assert box(page, "#field-body")["y"] + 96 <= PHONE["height"]
        # On a phone the suggestions come after the button: it does not move either.
        button_before = box(page, "#send-button")
        page.locator("#field-body").press_sequentially(a_draft_the_forum_answers(settings))
        expect(page.locator("#suggestions li a").first).to_be_visible()
        assert abs(box(page, "#send-button")["y"] - button_before["y"]) < 1
        page.screenshot(path=str(ARTIFACTS / "new-message-phone-customer.png"), full_page=True)
    finally:
        context.close()
