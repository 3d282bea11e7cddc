"""The main pages in a real Chromium, on demo content, on a desktop and on a phone: no
axe-core violation, nothing wider than the window, and the layout a person sees (room
around the content, a one-row staff header, readable figures).

axe-core is vendored in tests/vendor/axe.min.js (MPL 2.0, its licence header kept) and
injected into each page by a context that bypasses the CSP: the site itself allows no
foreign script."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from board.db import categories, conversations, sync_engine, topics, users
from board.demo import DEMO_PASSWORD, DEMO_STAFF, fill_demo
from board.search.indexing import rebuild
from tests.conftest import ARTIFACTS

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


def test_staff_pages_pass_axe_and_fit_the_screen(browser: Browser, demo_site: dict):
    audit_pages(
        browser, demo_site, "staff", ["/staff", "/staff/stats", "/staff/stats/conversations"]
    )
    audit_pages(browser, demo_site, "staff", [f"/staff/t/{demo_site['number']}"], ["desktop"])


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
