"""Known markdown and HTML XSS payloads, through every place user text appears.

The pages are parsed (html.parser, a real tokenizer: attributes decoded as a browser
decodes them), not searched for substrings; one test loads them in Chromium with the
CSP switched off, so the markup alone must keep them inert.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from board.db import users
from board.markup import link_allowed, render_markdown
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ARTIFACTS,
    index_now,
    mail_text,
    user_row,
    wait_for,
)
from tests.test_inbox import open_conversation, rows

TECH = "technik-und-fragen"
SVG_ALERT = "PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"  # base64 of <svg onload=alert(1)>
HTML_ALERT = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="  # base64 of <script>alert(1)</script>

# Each is a markdown text a customer could send. They call alert() or set window.__xss.
CORPUS = [
    # raw HTML
    "<script>window.__xss=1;alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>window.__xss=1</script></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    f'<embed src="data:text/html;base64,{HTML_ALERT}">',
    '<a href="javascript:alert(1)">klick</a>',
    '<a href="&#14;javascript:alert(1)">klick</a>',
    "<details open ontoggle=alert(1)>",
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<x onclick=alert(1)>klick</x>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    # mutation XSS: shapes that change meaning when a browser re-parses them
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table>"
    "</mtext></math>",
    '<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;/mglyph&gt;&lt;img'
    '&Tab;src=1&Tab;onerror=alert(1)&gt;">',
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    # links: schemes in every disguise
    "[klick](javascript:alert(1))",
    "[klick](JaVaScRiPt:window.__xss=1)",
    "[klick]( javascript:alert(1))",
    "[klick](<javascript:alert(1)>)",
    "[klick](<java\tscript:alert(1)>)",
    "[klick](<java\nscript:alert(1)>)",
    "[klick](jav&#x09;ascript:alert(1))",
    "[klick](&#106;avascript:alert(1))",
    "[klick](&#x6A;avascript&#x3A;alert(1))",
    "[klick](javascript&colon;alert(1))",
    "[klick](\x01javascript:alert(1))",
    "[klick](vbscript:msgbox(1))",
    f"[klick](data:text/html;base64,{HTML_ALERT})",
    "[klick](java%0ascript:alert(1))",
    "[klick][1]\n\n[1]: javascript:alert(1)",
    "[klick][2]\n\n[2]: <vbscript:msgbox(1)>",
    "[klick][3]\n\n[3]: &#106;avascript:alert(1)",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:window.__xss=1>",
    "<vbscript:msgbox(1)>",
    f"<data:text/html;base64,{HTML_ALERT}>",
    # images
    "![bild](javascript:alert(1))",
    f"![bild](data:image/svg+xml;base64,{SVG_ALERT})",
    "![bild](data:image/png;base64,iVBORw0KGgo=)",
    "![bild][4]\n\n[4]: javascript:alert(1)",
    # breaking out of the attributes markdown itself writes
    '[a](https://example.com "t\\" onmouseover=\\"alert(1)")',
    '![a" onerror="alert(1)](x.png)',
    '```"><img src=x onerror=alert(1)>\ncode\n```',
    "[<img src=x onerror=alert(1)>](https://example.com)",
]

# Short enough for a name (120 characters), a title or a search.
NAME_PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "<script>window.__xss=1</script>",
    "'><iframe src=javascript:alert(1)>",
]

DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:")
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "poster", "data", "xlink:href", "background", "ping"}
)
FORBIDDEN_ELEMENTS = frozenset(
    {"iframe", "frame", "frameset", "object", "embed", "applet", "math", "noscript"}
    | {"base", "template", "style", "x"}
)
C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
# A staff signature holds at most 1,000 characters.
SIGNATURE = "\n\n".join(NAME_PAYLOADS + CORPUS[:12] + CORPUS[22:30])[:1000]


def corpus_text() -> str:
    """The whole corpus as one markdown text, each payload after a marker paragraph."""
    return "\n\n".join(f"fall-{number:02d}\n\n{payload}" for number, payload in enumerate(CORPUS))


def browser_scheme(url: str) -> str:
    """The start of an address as a browser reads it: tabs and newlines removed anywhere,
    control characters and spaces at the ends, case folded."""
    return re.sub(r"[\t\n\r]", "", url).strip(C0_AND_SPACE).lower()


class Inspector(HTMLParser):
    """Every element, attribute and text of a page, with what could run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.in_script = False
        self.in_data = False  # a <script type="application/json">: read, never run

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attributes))
        shown = f"<{tag} {attributes}>"
        if tag in FORBIDDEN_ELEMENTS:
            self.problems.append(f"element {shown}")
        if tag == "script":
            self.in_script = attributes.get("type", "").lower() != "application/json"
            self.in_data = not self.in_script
            data_island = self.in_data and "src" not in attributes
            if not (data_island or attributes.get("src", "").startswith("/static/")):
                self.problems.append(f"script neither from /static nor JSON data: {shown}")
        if tag == "meta" and "http-equiv" in attributes:
            self.problems.append(f"meta http-equiv: {shown}")
        for name, value in attributes.items():
            if name.startswith("on"):
                self.problems.append(f"handler attribute {name}: {shown}")
            if name == "srcdoc":
                self.problems.append(f"srcdoc: {shown}")
            addresses = value.split(",") if name == "srcset" else [value]
            if name in URL_ATTRIBUTES | {"srcset"} and any(
                browser_scheme(address).startswith(DANGEROUS_SCHEMES) for address in addresses
            ):
                self.problems.append(f"dangerous {name}: {shown}")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = self.in_data = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append(f"inline script: {data[:80]!r}")
        if self.in_data:
            # Escaped as Jinja's tojson does: not a "<" in it, so no "</script>" ends it early.
            if "<" in data:
                self.problems.append(f"'<' in JSON data: {data[:80]!r}")
            json.loads(data)
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def inspect(html: str) -> Inspector:
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector


def assert_inert(html: str, where: str) -> Inspector:
    inspector = inspect(html)
    assert not inspector.problems, f"{where}: {inspector.problems}"
    return inspector


def assert_corpus_shown(inspector: Inspector, where: str) -> None:
    """Every payload reached the page (as text): the check above was not vacuous."""
    missing = [n for n in range(len(CORPUS)) if f"fall-{n:02d}" not in inspector.text]
    assert not missing, f"{where}: payloads {missing} are not on the page"
    assert "onerror=alert(1)" in inspector.text  # shown as text, not as an attribute


# --- the renderer itself: nothing but plain elements ----------------------------------------

MARKDOWN_ELEMENTS = {
    "p": set(),
    "br": set(),
    "em": set(),
    "strong": set(),
    "s": set(),
    "code": {"class"},
    "pre": set(),
    "blockquote": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "hr": set(),
    "a": {"href", "title", "rel"},
    "img": {"src", "alt", "title"},
    **{f"h{level}": set() for level in range(1, 7)},
    **{tag: {"style"} for tag in ("table", "thead", "tbody", "tr", "th", "td")},
}


@pytest.mark.parametrize("payload", CORPUS + NAME_PAYLOADS)
def test_markdown_renders_only_plain_elements_and_safe_addresses(payload) -> None:
    inspector = assert_inert(render_markdown(payload), "render_markdown")
    for tag, attributes in inspector.elements:
        assert tag in MARKDOWN_ELEMENTS, (tag, attributes)
        assert set(attributes) <= MARKDOWN_ELEMENTS[tag], (tag, attributes)
        for name in ("href", "src"):
            if name in attributes:
                assert link_allowed(attributes[name]), attributes


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a",
        "http://example.com",
        "mailto:hilfe@example.com",
        "/t/1",
        "#p2",
        "seite.html",
        "?page=2",
        "foo/bar:baz",
    ],
)
def test_ordinary_links_still_work(url) -> None:
    html = render_markdown(f"[hier]({url})")
    link = [attrs for tag, attrs in inspect(html).elements if tag == "a"]
    assert link and link[0]["href"] == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "\x01javascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "jar:https://example.com/a.jar!/",
    ],
)
def test_link_allowed_refuses_other_schemes(url) -> None:
    assert not link_allowed(url)


# --- every page where user text appears ------------------------------------------------------


def open_topic(person, title: str, body: str) -> int:
    response = person.submit(f"/c/{TECH}/new", {"title": title, "body": body})
    assert response.status_code == 303, response.text[:500]
    return int(response.headers["location"].rsplit("/", 1)[1])


def set_staff_profile(staff, name: str, title: str, signature: str) -> None:
    response = staff.submit(
        f"/staff/team/{staff.user_id}",
        {"name": name, "role": "admin", "title": title, "signature": signature, "active": "1"},
    )
    assert response.status_code == 303, response.text[:500]


def test_forum_pages_keep_the_corpus_inert(people, client, settings) -> None:
    erika = people.customer(NAME_PAYLOADS[0], email="erika@example.com")
    max_ = people.customer(NAME_PAYLOADS[1], email="max@example.com")
    assert user_row(settings, "erika@example.com").name == NAME_PAYLOADS[0]
    topic_id = open_topic(erika, NAME_PAYLOADS[2], corpus_text())
    response = max_.submit(f"/t/{topic_id}/reply", {"body": corpus_text()})
    assert response.status_code == 303
    staff = people.staff()
    set_staff_profile(staff, NAME_PAYLOADS[3], NAME_PAYLOADS[0], CORPUS[0])
    assert staff.submit(f"/t/{topic_id}/reply", {"body": "Danke"}).status_code == 303

    topic = assert_inert(client.get(f"/t/{topic_id}").text, "topic")
    assert_corpus_shown(topic, "topic")
    for name in NAME_PAYLOADS:
        assert name in topic.text  # title, author names, staff title: all shown as text
    for path in ("/", f"/c/{TECH}", f"/u/{erika.user_id}", f"/u/{staff.user_id}"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert_inert(page.text, path)
    assert_inert(erika.get(f"/t/{topic_id}").text, "topic, as its author")
    assert_inert(staff.get(f"/t/{topic_id}").text, "topic, as staff")


def test_conversation_pages_keep_the_corpus_inert(people, settings) -> None:
    erika = people.customer(NAME_PAYLOADS[0], email="erika@example.com")
    staff = people.staff()
    set_staff_profile(staff, NAME_PAYLOADS[1], NAME_PAYLOADS[2], SIGNATURE)
    number = open_conversation(erika, CORPUS[1] + "\n\n" + corpus_text())
    answer = staff.submit(f"/staff/t/{number}/reply", {"body": corpus_text(), "status": "pending"})
    assert answer.status_code == 303, answer.text[:500]
    canned = {"shortcut": "xss", "title": NAME_PAYLOADS[2], "body": "</script>" + SIGNATURE}
    assert staff.submit("/staff/replies", canned).status_code == 303
    note = {"body": corpus_text(), "internal": "1"}
    assert staff.submit(f"/staff/t/{number}/reply", note).status_code == 303

    customer_view = assert_inert(erika.get(f"/inbox/{number}").text, "customer's conversation")
    assert_corpus_shown(customer_view, "customer's conversation")
    staff_page = staff.get(f"/staff/t/{number}").text
    staff_view = assert_inert(staff_page, "staff conversation")
    assert "\\u003c/script\\u003e" in staff_page  # the canned reply, escaped in its JSON
    assert_corpus_shown(staff_view, "staff conversation")
    assert NAME_PAYLOADS[0] in staff_view.text  # the customer panel
    for person, path in (
        (erika, "/inbox"),
        (erika, "/notifications"),
        (erika, "/account"),
        (staff, "/staff"),
        (staff, "/staff?status=pending"),
        (staff, f"/staff/customers/{erika.user_id}"),
        (staff, "/staff/team"),
        (staff, "/staff/home"),
        (staff, "/staff/replies"),
    ):
        page = person.get(path)
        assert page.status_code == 200, path
        assert_inert(page.text, path)


def test_search_results_and_suggestions_keep_the_corpus_inert(people, app, client) -> None:
    erika = people.customer(NAME_PAYLOADS[0])
    for number, payload in enumerate(CORPUS + NAME_PAYLOADS):
        # The word found sits right beside the payload, so the snippet must show both.
        open_topic(
            erika, f"Paketband {NAME_PAYLOADS[number % 4]}", f"Paketband {payload} Paketband"
        )
    open_conversation(erika, "Paketband " + corpus_text())
    index_now(app, client)

    marked = 0
    for scope in ("forum", "all"):
        for page_number in range(1, 8):
            page = erika.get(f"/search?q=Paketband&scope={scope}&page={page_number}").text
            inspector = assert_inert(page, f"search {scope} page {page_number}")
            marked += sum(1 for tag, _attrs in inspector.elements if tag == "mark")
    assert marked > len(CORPUS)  # the snippets were there, with the words highlighted
    hits = client.get("/search?q=Paketband+onerror").text
    assert_inert(hits, "search for a payload word")
    assert_inert(client.get("/search?q=" + NAME_PAYLOADS[0]).text, "search for a payload")

    draft = "Paketband " + " ".join(NAME_PAYLOADS)
    topics = client.get("/search/suggest", params={"q": draft}).json()["topics"]
    assert topics
    for topic in topics:
        snippet = inspect(topic["snippet"])
        assert {tag for tag, _attrs in snippet.elements} <= {"mark"}, topic["snippet"]
        assert all(attrs == {"class": attrs.get("class", "")} for _t, attrs in snippet.elements)
    # The title travels as text for suggest.js to set as textContent; JSON escapes nothing
    # it need not, so a payload title is there as written.
    assert any(name in json.dumps(topics, ensure_ascii=False) for name in NAME_PAYLOADS)


def test_notification_mail_names_are_inert_and_carry_no_message_text(
    people, settings, mailbox
) -> None:
    erika = people.customer(NAME_PAYLOADS[0], email="erika@example.com")
    staff = people.staff()
    set_staff_profile(staff, NAME_PAYLOADS[1], NAME_PAYLOADS[2], "Gruß, das Team")
    number = open_conversation(erika, corpus_text())
    reply = "Geheime Antwort <img src=x onerror=alert(1)>"
    assert staff.submit(f"/staff/t/{number}/reply", {"body": reply}).status_code == 303

    # The sender task may hold the mail this very moment: wait until it is written.
    [message] = wait_for(lambda: mailbox.to("erika@example.com"))
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    html_parts = [
        part.get_content() for part in message.walk() if part.get_content_type() == "text/html"
    ]
    assert html_parts
    for html in html_parts:
        inspector = assert_inert(html, "mail")
        assert NAME_PAYLOADS[0] in inspector.text  # "Hello <name>," as text
    text = mail_text(message)
    assert "Geheime Antwort" not in text
    assert not any(f"fall-{n:02d}" in text for n in range(len(CORPUS)))


def test_a_stored_payload_name_is_kept_as_typed(people, settings) -> None:
    # Escaping happens on output, never by changing what people typed.
    people.customer(NAME_PAYLOADS[1], email="erika@example.com")
    [name] = rows(settings, sa.select(users.c.name).where(users.c.email == "erika@example.com"))[0]
    assert name == NAME_PAYLOADS[1]


# --- in a real browser, with the CSP out of the way -------------------------------------------


@pytest.mark.e2e
def test_no_payload_runs_in_chromium(live_server: str, browser) -> None:
    """The corpus on the forum, in a conversation and in the staff view: no dialog opens,
    window.__xss stays unset and no link or image has a scheme that runs.

    bypass_csp: the page's CSP would block inline scripts on its own; this checks the
    markup, the layer that must hold should the CSP ever be loosened.
    """
    from playwright.sync_api import expect

    context = browser.new_context(locale="de-DE", bypass_csp=True)
    dialogs: list[str] = []
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{live_server}/register")
    page.get_by_label("Name").fill(NAME_PAYLOADS[0])
    page.get_by_label("E-Mail").fill("erika@example.com")
    page.get_by_label("Passwort").fill("mein-sicheres-passwort")
    page.get_by_role("button", name="Registrieren").click()
    expect(page.locator("#customer-number")).to_be_visible()

    page.goto(f"{live_server}/c/{TECH}")
    page.get_by_label("Titel").fill(NAME_PAYLOADS[2])
    page.get_by_label("Ihr Text").fill(corpus_text())
    page.get_by_role("button", name="Thema veröffentlichen").click()
    expect(page.locator(".post-body")).to_have_count(1)
    topic_url = page.url

    page.goto(f"{live_server}/inbox/new")
    page.locator("#field-body").fill(corpus_text())
    page.locator("form", has=page.locator("#field-body")).locator("button[type=submit]").click()
    expect(page.locator(".post-body").first).to_be_visible()
    conversation_url = page.url

    staff = context.browser.new_context(locale="de-DE", bypass_csp=True)
    staff_page = staff.new_page()
    staff_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    staff_page.goto(f"{live_server}/login")
    staff_page.get_by_label("Kundennummer oder E-Mail").fill(ADMIN_EMAIL)
    staff_page.get_by_label("Passwort").fill(ADMIN_PASSWORD)
    staff_page.get_by_role("button", name="Anmelden").click()
    staff_page.goto(f"{live_server}/staff/t/{conversation_url.rsplit('/', 1)[1]}")

    for visitor, url in ((page, topic_url), (page, conversation_url), (staff_page, None)):
        if url:
            visitor.goto(url)
        visitor.wait_for_load_state("load")
        visitor.mouse.move(200, 300)  # hover handlers, had any survived
        visitor.wait_for_timeout(300)  # onerror of images that failed to load
        assert visitor.evaluate("window.__xss") is None, visitor.url
        text = visitor.locator("body").inner_text()
        assert all(f"fall-{n:02d}" in text for n in range(len(CORPUS))), visitor.url
        # The browser's own reading of every address on the page.
        schemes = visitor.evaluate(
            """() => [...document.querySelectorAll('[href], [src], [action], [srcdoc]')]
                 .map(e => e.hasAttribute('srcdoc') ? 'srcdoc:'
                      : new URL(e.getAttribute('href') ?? e.getAttribute('src')
                                ?? e.getAttribute('action'), document.baseURI).protocol)"""
        )
        assert not {"javascript:", "vbscript:", "data:", "srcdoc:"} & set(schemes), visitor.url
        handlers = visitor.evaluate(
            """() => [...document.querySelectorAll('*')].flatMap(e =>
                 [...e.attributes].filter(a => a.name.startsWith('on')).map(a => a.name))"""
        )
        assert handlers == [], visitor.url
        visitor.screenshot(path=str(ARTIFACTS / "xss-corpus.png"), full_page=True)
    assert dialogs == []
    staff.close()
    context.close()
