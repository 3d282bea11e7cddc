"""The forum's answers in a real Chromium: a customer asks, staff answer, the customer marks
the answer as the solution and rates it, staff see the counts; on a phone the author column
is one compact line. Pages with a solution pass axe-core and fit 1366 and 390 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACTS
from tests.test_customer_side_browser import log_in, register
from tests.test_pages_browser import DESKTOP, PHONE, audit

pytestmark = pytest.mark.e2e


def ask(page: Page, base: str) -> str:
    page.goto(f"{base}/c/technik-und-fragen")
    page.locator("#new-topic-button").click()  # at the top, it leads to the form below
    expect(page.locator("#field-title")).to_be_in_viewport()
    page.locator("#field-title").fill("Drucker zieht kein Papier ein")
    page.locator("#field-body").fill("Der Drucker zieht kein Papier ein. Was kann ich tun?")
    page.get_by_role("button", name="Thema veröffentlichen").click()
    expect(page).to_have_url(re.compile(r"/t/\d+$"))
    return page.url


def test_marking_a_solution_and_rating_it(live_server: str, page: Page, browser: Browser):
    base = live_server
    page.set_viewport_size(DESKTOP)
    register(page, base)
    topic_url = ask(page, base)

    staff_context = browser.new_context(locale="de-DE", viewport=DESKTOP, bypass_csp=True)
    staff = staff_context.new_page()
    log_in(staff, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff.goto(topic_url)
    staff.locator("#field-body").fill("Öffnen Sie die hintere Klappe und entfernen Sie den Riegel.")
    staff.get_by_role("button", name="Antwort senden").click()
    expect(staff.locator(".post")).to_have_count(2)

    page.goto(topic_url)
    answer = page.locator(".post").nth(1)
    answer.get_by_role("button", name="Als Lösung markieren").click()
    solution = page.locator("#solution")
    expect(solution).to_contain_text("Lösung")
    expect(solution).to_contain_text("hintere Klappe")
    expect(page.locator(".topic-flags .badge-solved")).to_have_text("Gelöst")
    # Under the question: the box comes between the first and the second post.
    boxes = [
        page.locator(selector).bounding_box()["y"]
        for selector in (".post >> nth=0", "#solution", ".post >> nth=1")
    ]
    assert boxes == sorted(boxes)

    yes = solution.get_by_role("button", name="Ja")
    no = solution.get_by_role("button", name="Nein")
    yes.click()
    expect(page.locator("#solution").get_by_role("button", name="Ja")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#vote-thanks")).to_be_visible()
    expect(page.locator("#vote-counts")).to_have_count(0)  # counts are for the team
    page.locator("#solution").get_by_role("button", name="Nein").click()
    expect(page.locator("#solution").get_by_role("button", name="Nein")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#solution").get_by_role("button", name="Ja")).to_have_attribute(
        "aria-pressed", "false"
    )
    assert no  # the same form, answered twice: one vote, changed

    staff.goto(topic_url)
    expect(staff.locator("#vote-counts")).to_have_text("Hilfreich: 0 ja, 1 nein")
    staff.screenshot(path=str(ARTIFACTS / "forum-solution-staff.png"), full_page=True)
    audit(staff, "forum-solution-staff-desktop")

    # The category's list says so, for guests too.
    guest_context = browser.new_context(locale="de-DE", viewport=PHONE, bypass_csp=True)
    guest = guest_context.new_page()
    guest.goto(f"{base}/c/technik-und-fragen")
    row = guest.locator("tr", has_text="Drucker zieht kein Papier ein")
    expect(row.locator(".badge-solved")).to_have_text("Gelöst")
    guest.goto(topic_url)
    expect(guest.locator("#solution")).to_be_visible()
    audit(guest, "forum-solution-guest-phone")
    guest_context.close()

    # Unmarked by the author: gone at once.
    page.goto(topic_url)
    page.locator(".post").nth(1).get_by_role("button", name="Lösungsmarkierung aufheben").click()
    expect(page.locator("#solution")).to_have_count(0)
    staff_context.close()


def test_the_author_is_one_compact_line_on_a_phone(live_server: str, page: Page, browser: Browser):
    base = live_server
    page.set_viewport_size(PHONE)
    register(page, base)
    topic_url = ask(page, base)
    staff_context = browser.new_context(locale="de-DE", viewport=PHONE, bypass_csp=True)
    staff = staff_context.new_page()
    log_in(staff, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff.goto(topic_url)
    staff.locator("#field-body").fill("Bitte entfernen Sie den Transportriegel.")
    staff.get_by_role("button", name="Antwort senden").click()
    staff.locator(".post").nth(1).get_by_role("button", name="Als Lösung markieren").click()
    expect(staff.locator("#solution")).to_be_visible()

    for viewer in (staff, page):
        viewer.goto(topic_url)
        author = viewer.locator(".post .author").first
        post = viewer.locator(".post").first
        author_box, post_box = author.bounding_box(), post.bounding_box()
        # One line across the post, not the 11 rem column beside it.
        assert author_box["width"] == pytest.approx(post_box["width"], abs=4)
        assert author_box["height"] < 56, author_box
        expect(author.locator(".author-facts")).to_be_hidden()
        expect(author.locator(".author-name")).to_be_visible()
        name_box = author.locator(".author-name").bounding_box()
        avatar_box = author.locator(".avatar").bounding_box()
        assert (
            abs(
                name_box["y"]
                + name_box["height"] / 2
                - (avatar_box["y"] + avatar_box["height"] / 2)
            )
            < 8
        )
    audit(staff, "forum-topic-staff-phone")
    page.screenshot(path=str(ARTIFACTS / "forum-topic-customer-phone.png"), full_page=True)
    staff_context.close()

    desktop = browser.new_context(locale="de-DE", viewport=DESKTOP, bypass_csp=True)
    wide = desktop.new_page()
    wide.goto(topic_url)
    column = wide.locator(".post .author").first.bounding_box()
    assert 150 < column["width"] < 200  # the 11 rem column where there is room
    audit(wide, "forum-topic-guest-desktop")
    wide.goto(base + "/")
    box = wide.get_by_role("searchbox", name="Erst suchen, dann schreiben")
    expect(box).to_be_visible()
    assert box.bounding_box()["width"] > 400  # the large field, not the header's small one
    box.fill("Papier")
    box.press("Enter")
    expect(wide).to_have_url(re.compile(r"/search\?q=Papier"))
    expect(wide.locator("#write-to-us a")).to_have_attribute("href", "/contact")
    desktop.close()
