"""What a person does with the pages, in a real Chromium (Playwright) against real uvicorn."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from board.db import conversations, sync_engine, utcnow
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ARTIFACTS

pytestmark = pytest.mark.e2e


def log_in(page: Page, base: str, login_value: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Kundennummer oder E-Mail").fill(login_value)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Anmelden").click()


def register(page: Page, base: str) -> None:
    page.goto(f"{base}/register")
    page.get_by_label("Name").fill("Erika Mustermann")
    page.get_by_label("E-Mail").fill("erika@example.com")
    page.get_by_label("Passwort").fill("mein-sicheres-passwort")
    page.get_by_role("button", name="Registrieren").click()


def test_customer_registers_writes_markdown_and_staff_locks_the_topic(
    live_server: str, page: Page, browser
):
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server

    # Register; the header shows the new customer number.
    register(page, base)
    expect(page.locator("#customer-number")).to_contain_text("10001")

    # Log out, log back in with the customer number.
    page.get_by_role("button", name="Abmelden").click()
    expect(page.locator("#customer-number")).to_have_count(0)
    log_in(page, base, "10001", "mein-sicheres-passwort")
    expect(page.locator("#customer-number")).to_contain_text("10001")
    expect(page).to_have_url(f"{base}/inbox")  # a customer's login lands in the inbox
    page.goto(f"{base}/")

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
    staff_context = browser.new_context(locale="de-DE")
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
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="de-DE")
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


PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def test_customer_writes_with_a_dropped_pdf_and_downloads_it(live_server: str, page: Page, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server
    register(page, base)

    page.get_by_role("link", name="Postfach").click()
    page.get_by_role("link", name="Neue Nachricht schreiben").click()
    expect(page.locator(".house-rules")).to_contain_text("Die ersten 100 Zeichen")
    text = "Die Rechnung zu Bestellung 4711 stimmt nicht, der Rabatt von 10 % fehlt. " * 2
    page.get_by_label("Ihre Nachricht").fill(text)

    # Drop a PDF onto the text box, as from the desktop.
    drop = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            const type = {type: "application/pdf"};
            const file = new File([new Uint8Array(bytes)], "rechnung.pdf", type);
            transfer.items.add(file);
            return transfer;
        }""",
        list(PDF),
    )
    page.dispatch_event("#field-body", "drop", {"dataTransfer": drop})
    expect(page.locator(".chosen-files li")).to_contain_text("rechnung.pdf")
    page.get_by_role("button", name="Nachricht senden").click()

    expect(page.locator("#subject")).to_contain_text("Die Rechnung zu Bestellung 4711")
    expect(page.locator("#subject")).to_contain_text("…")
    expect(page.locator("#ticket-number")).to_have_text("#1001")

    # Staff answer; the overview shows it unread until the customer opens it. (An answer
    # that appears on the open conversation itself counts as read: the customer is
    # elsewhere meanwhile.)
    page.goto(f"{base}/")
    staff_context = browser.new_context(locale="de-DE")
    staff_page = staff_context.new_page()
    log_in(staff_page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff_page.goto(f"{base}/staff/t/1001")
    staff_page.locator("#field-body").fill("Danke, wir korrigieren die Rechnung.")
    staff_page.get_by_role("button", name="Senden", exact=True).click()
    # Closed once the answer shows, as a person would: a close while the page was still
    # loading hung in Chromium on CI (twice, never here).
    expect(staff_page.locator(".thread .message")).to_have_count(2)
    staff_context.close()

    page.goto(f"{base}/inbox")
    row = page.locator(".conversation-row").first
    expect(row).to_contain_text("#1001")
    expect(row).to_contain_text("Die Rechnung zu Bestellung 4711")
    expect(row.locator(".unread-dot")).to_have_count(1)
    expect(page.locator("#unread-count")).to_have_text("1")
    page.screenshot(path=str(ARTIFACTS / "inbox-overview.png"), full_page=True)

    row.get_by_role("link").click()
    expect(page.locator("#unread-count")).to_have_text("0")
    expect(page.locator(".thread .message")).to_have_count(2)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="rechnung.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "rechnung.pdf"
    with open(download.path(), "rb") as downloaded:
        assert downloaded.read() == PDF
    page.screenshot(path=str(ARTIFACTS / "inbox-conversation.png"), full_page=True)


def test_an_english_speaking_guest_writes_through_the_contact_form(live_server: str, browser):
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server}/contact")
    expect(page.get_by_role("heading", level=1)).to_have_text("Write to us")
    page.get_by_label("Name").fill("Grace Guest")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Your message").fill("Do you ship to **Norway**? My order is 4711.")
    page.get_by_role("button", name="Send message").click()
    expect(page.locator("#subject")).to_have_text("Do you ship to Norway? My order is 4711.")
    expect(page.locator("#ticket-number")).to_have_text("#1001")
    expect(page.get_by_text("Keep the link to this page")).to_be_visible()
    page.get_by_label("Your reply").fill("Also: is express delivery possible?")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".thread .message")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "guest-conversation-en.png"), full_page=True)
    context.close()


def test_staff_answer_the_longest_waiting_request_by_keyboard_with_a_canned_reply(
    live_server: str, page: Page, browser, settings
):
    base = live_server
    register(page, base)
    for text in ("Frage zur Lieferzeit meines Hubs", "Wann kommt mein Rauchmelder an?"):
        page.goto(f"{base}/inbox/new")
        page.get_by_label("Ihre Nachricht").fill(text)
        page.get_by_role("button", name="Nachricht senden").click()
        expect(page.locator("#subject")).to_contain_text(text[:20])
    # The second request has waited longest: the queue must put it first.
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            conversations.update()
            .where(conversations.c.number == 1002)
            .values(waiting_since=utcnow() - timedelta(days=2))
        )
    engine.dispose()

    staff_context = browser.new_context(locale="de-DE")
    staff = staff_context.new_page()
    log_in(staff, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff.goto(f"{base}/staff/replies")
    staff.get_by_label("Kürzel (ohne #)").fill("versand")
    staff.get_by_label("Titel").fill("Versandzeit")
    staff.get_by_label("Text").fill("Ihre Bestellung geht heute noch in den Versand.")
    staff.get_by_role("button", name="Speichern").click()
    expect(staff.locator("#canned-replies")).to_contain_text("#versand")

    # The queue opens newest first; the order that puts the longest waiting first is a link.
    staff.goto(f"{base}/staff")
    staff.get_by_role("link", name="VIP, dann am längsten wartend").click()
    expect(staff).to_have_url(re.compile(r"order=waiting"))
    staff.keyboard.press("j")
    expect(staff.locator(".queue-row.is-selected")).to_contain_text("#1002")
    staff.keyboard.press("Enter")
    expect(staff.locator("#ticket-number")).to_have_text("#1002")
    # As a person waits for the page: its deferred staff.js listens for keys only once the
    # document is parsed (on a busy machine "r" came first and went nowhere).
    staff.wait_for_load_state("domcontentloaded")
    staff.keyboard.press("r")
    expect(staff.locator("#field-body")).to_be_focused()
    staff.keyboard.type("Guten Tag,\n#vers")
    expect(staff.locator("#canned-menu")).to_contain_text("Versandzeit")
    staff.keyboard.press("Enter")
    expect(staff.locator("#field-body")).to_have_value(
        "Guten Tag,\nIhre Bestellung geht heute noch in den Versand."
    )
    expect(staff.locator("#field-status")).to_have_count(0)  # one status control: the update form's
    staff.get_by_role("button", name="Senden", exact=True).click()
    expect(staff.locator("#status")).to_have_text("Wartet auf Kunde")
    staff_context.close()

    page.goto(f"{base}/inbox/1002")
    expect(page.locator(".thread")).to_contain_text(
        "Ihre Bestellung geht heute noch in den Versand."
    )
    with engine.connect() as connection:
        status = connection.execute(
            sa.select(conversations.c.status).where(conversations.c.number == 1002)
        ).scalar_one()
    engine.dispose()
    assert status == "pending"


def test_a_canned_reply_is_inserted_with_its_placeholders_filled(
    live_server: str, page: Page, browser
):
    base = live_server
    register(page, base)
    page.goto(f"{base}/inbox/new")
    page.get_by_label("Ihre Nachricht").fill("Wo bleibt meine Bestellung 4711? Danke!")
    page.get_by_role("button", name="Nachricht senden").click()
    expect(page.locator("#ticket-number")).to_have_text("#1001")

    staff_context = browser.new_context(locale="de-DE")
    staff = staff_context.new_page()
    log_in(staff, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff.goto(f"{base}/staff/replies")
    staff.get_by_label("Kürzel (ohne #)").fill("versand")
    staff.get_by_label("Titel").fill("Versand")
    staff.get_by_label("Text").fill(
        "Hallo {vorname},\nIhre Bestellung {order} ({ticket}) ist unterwegs.\n{agent}"
    )
    staff.get_by_role("button", name="Speichern").click()
    expect(staff.locator("#canned-replies")).to_contain_text("#versand")

    staff.goto(f"{base}/staff/t/1001")
    staff.wait_for_load_state("domcontentloaded")
    box = staff.locator("#field-body")
    box.click()
    staff.keyboard.type("#vers")
    expect(staff.locator("#canned-menu")).to_contain_text("Versand")
    staff.keyboard.press("Enter")
    # The real text, before sending: the customer's first name, the order number she
    # named, the ticket and the staff member.
    expect(box).to_have_value(
        "Hallo Erika,\nIhre Bestellung 4711 (#1001) ist unterwegs.\nAdministrator"
    )
    staff.screenshot(path=str(ARTIFACTS / "canned-placeholders.png"), full_page=True)
    staff.get_by_role("button", name="Senden", exact=True).click()
    expect(staff.locator(".thread")).to_contain_text("Ihre Bestellung 4711 (#1001) ist unterwegs.")
    staff_context.close()

    page.goto(f"{base}/inbox/1001")
    expect(page.locator(".thread")).to_contain_text("Hallo Erika,")
    expect(page.locator(".thread")).not_to_contain_text("{")


def test_a_staff_answer_appears_on_the_customers_open_pages_without_reload(
    live_server: str, page: Page, browser
):
    """Two browsers. The customer keeps one conversation and the inbox open; staff answer
    another conversation, then this one. Without a reload the customer's inbox counts the
    unread answer, the open conversation shows its answer (and counts it as read), and
    the staff page says that the customer has seen it."""
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server
    register(page, base)

    def write(text: str) -> str:
        page.goto(f"{base}/inbox/new")
        page.locator("#field-body").fill(text)
        page.get_by_role("button", name="Nachricht senden").click()
        expect(page).to_have_url(re.compile(r"/inbox/\d+$"))
        return page.url.rsplit("/", 1)[1]

    other = write("Bitte schicken Sie mir die Rechnung noch einmal.")
    number = write("Mein Paket mit dem Thermostat ist nicht angekommen.")
    inbox = page.context.new_page()
    inbox.goto(f"{base}/inbox")
    expect(inbox.locator("#unread-count")).to_have_text("0")

    staff_context = browser.new_context(locale="de-DE")
    staff_page = staff_context.new_page()
    log_in(staff_page, base, ADMIN_EMAIL, ADMIN_PASSWORD)

    def answer(ticket: str, text: str) -> None:
        staff_page.goto(f"{base}/staff/t/{ticket}")
        staff_page.locator("#field-body").fill(text)
        staff_page.get_by_role("button", name="Senden", exact=True).click()
        expect(staff_page.locator("#thread .message")).to_have_count(2)

    answer(other, "Die Rechnung ist unterwegs.")
    expect(inbox.locator("#unread-count")).to_have_text("1")
    expect(inbox.locator("#bell-count")).to_have_text("1")
    expect(staff_page.locator("#seen-hint")).to_be_hidden()

    answer(number, "Es ist **unterwegs** und kommt morgen.")
    expect(page.locator("#thread .message")).to_have_count(2)
    expect(page.locator("#thread .message.from-staff strong").last).to_have_text("unterwegs")
    expect(staff_page.locator("#seen-hint")).to_be_visible()  # the customer's page read it
    expect(inbox.locator("#unread-count")).to_have_text("1")  # the other answer is unread
    page.screenshot(path=str(ARTIFACTS / "live-answer-customer.png"), full_page=True)
    staff_page.screenshot(path=str(ARTIFACTS / "live-answer-staff.png"), full_page=True)
    staff_context.close()


def test_the_open_queue_shows_a_new_request_without_reload_and_asks_cheaply(
    live_server: str, page: Page, browser
):
    """Staff keep the queue open; a customer writes. The new row comes in without a
    reload, fetched from /staff/queue/live, which answers 304 while nothing changed."""
    base = live_server
    staff_context = browser.new_context(locale="de-DE")
    staff = staff_context.new_page()
    log_in(staff, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff.goto(f"{base}/staff?status=open&assigned=all")
    expect(staff.locator(".queue-row")).to_have_count(0)
    answers: list[int] = []
    staff.on(
        "response",
        lambda response: (
            answers.append(response.status) if "/staff/queue/live" in response.url else None
        ),
    )

    register(page, base)
    page.goto(f"{base}/inbox/new")
    page.locator("#field-body").fill("Mein Rauchmelder piept jede Nacht um drei.")
    page.get_by_role("button", name="Nachricht senden").click()
    expect(page).to_have_url(re.compile(r"/inbox/\d+$"))
    expect(staff.locator(".queue-row")).to_have_count(1)
    expect(staff.locator(".queue-row")).to_contain_text("Rauchmelder piept")
    assert 200 in answers  # the parts, not the page
    staff_context.close()


def test_a_click_anywhere_on_a_queue_row_opens_it_and_ctrl_enter_sends(
    live_server: str, page: Page, browser
):
    base = live_server
    register(page, base)
    page.goto(f"{base}/inbox/new")
    page.locator("#field-body").fill("Die Steckdosenleiste summt laut.")
    page.locator("#field-body").press("Control+Enter")  # the customer's form too
    expect(page).to_have_url(re.compile(r"/inbox/\d+$"))
    number = page.url.rsplit("/", 1)[1]

    staff_context = browser.new_context(locale="de-DE", viewport={"width": 1366, "height": 900})
    staff = staff_context.new_page()
    log_in(staff, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    staff.goto(f"{base}/staff?status=open&assigned=all")
    # Where a person clicks: on the customer's name, not on the ticket link.
    box = staff.locator(".queue-row td").nth(2).bounding_box()
    staff.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(staff).to_have_url(re.compile(rf"/staff/t/{number}$"))
    staff.locator("#field-body").fill("Bitte schicken Sie sie uns, wir tauschen sie aus.")
    staff.locator("#field-body").press("Control+Enter")
    expect(staff.locator("#thread .message")).to_have_count(2)
    expect(staff.locator("#status")).to_have_text("Wartet auf Kunde")
    staff_context.close()
