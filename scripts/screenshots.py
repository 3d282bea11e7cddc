"""Screenshots of the main pages for README.md, from demo content, on a desktop and a phone.

    python scripts/screenshots.py            (from the repository root; about a minute)

Fills a temporary data folder with `python -m board demo` at a small size, starts
`python run.py` on a free port, and drives Debian's Chromium (/usr/bin/chromium, or
CHROMIUM_PATH) with Playwright: the forum and search as a guest, the inbox as the example
customer the demo prints, the queue and statistics as demo staff, each logged in through
the login form. Pages are found by following links, never by ids, so the script keeps
working as the demo changes. It writes docs/screenshots/<page>-<desktop|phone>.png: the
visible window only, reduced to 256 colours (Pillow), so the folder stays small.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
# Small, but enough for full lists, a topic with replies and a week of statistics.
DEMO_SIZE = ["--customers", "40", "--topics", "60", "--posts", "400", "--conversations", "250"]
SEARCH_QUERY = "Paket"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help=f"folder for the PNGs (default: {OUTPUT})"
    )
    parser.add_argument("--seed", default="1", help="the demo's seed (default: 1)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="board-screenshots-") as data_dir:
        env = {
            **os.environ,
            "BOARD_DATA_DIR": data_dir,
            "BOARD_LOCALE": "de",
            # A known admin, so that the first start prints no one-time password.
            "BOARD_ADMIN_EMAIL": "admin@shop.example",
            "BOARD_ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "BOARD_FLOOD_SECONDS": "0",
        }
        env.pop("BOARD_DATABASE_URL", None)  # always the temporary SQLite file
        logins = fill_demo(env, args.seed)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "run.py", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, server)
            written = take_all(base, logins, args.output)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    total = sum(path.stat().st_size for path in written)
    print(f"{len(written)} screenshots in {args.output}, {total / 1024:.0f} KB in all.")
    return 0


def fill_demo(env: dict[str, str], seed: str) -> dict[str, str]:
    """Runs the demo command; returns the logins it prints."""
    result = subprocess.run(
        [sys.executable, "-m", "board", "demo", *DEMO_SIZE, "--seed", seed],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    printed = result.stdout
    customer = re.search(r"Example customer login: (\S+)", printed)
    staff = re.search(r"Demo staff: ([^,\s]+)", printed)
    password = re.search(r"demo staff account: (\S+)", printed)
    if not (customer and staff and password):
        raise SystemExit(f"The demo printed no logins:\n{printed}")
    return {"customer": customer[1], "staff": staff[1], "password": password[1]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"run.py stopped:\n{server.stderr.read()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"run.py did not answer on {base} within {timeout:.0f} s")


# --- the pages --------------------------------------------------------------------------------


def take_all(base: str, logins: dict[str, str], output: Path) -> list[Path]:
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            with Devices(browser, base, output, written) as guest:
                guest_pages(guest)
            with Devices(browser, base, output, written) as customer:
                customer.log_in(logins["customer"], logins["password"])
                customer_pages(customer)
            with Devices(browser, base, output, written) as staff:
                staff.log_in(logins["staff"], logins["password"])
                staff_pages(staff)
        finally:
            browser.close()
    return written


class Devices:
    """One person on a desktop and a phone at once (a fresh context each, in German).

    Each step happens on both before the next: the phone sees the inbox before the desktop
    opens its unread answer, and opening a link takes the same page on both."""

    def __init__(self, browser: Browser, base: str, output: Path, written: list[Path]) -> None:
        self.base, self.output, self.written = base, output, written
        self.contexts = {
            device: browser.new_context(viewport=viewport, locale="de-DE")
            for device, viewport in VIEWPORTS.items()
        }
        self.pages = {device: context.new_page() for device, context in self.contexts.items()}

    def __enter__(self) -> Devices:
        return self

    def __exit__(self, *exc_info) -> None:
        for context in self.contexts.values():
            context.close()

    @property
    def first(self) -> Page:
        return next(iter(self.pages.values()))

    def visit(self, path: str) -> None:
        for page in self.pages.values():
            page.goto(urljoin(self.base, path), wait_until="load")
            settle(page)

    def shoot(self, name: str) -> None:
        for device, page in self.pages.items():
            self.written.append(save(page, self.output / f"{name}-{device}.png"))

    def links(self, pattern: str, *selectors: str) -> list[str]:
        """The paths of the current page's links that match `pattern`, the selectors in order."""
        found = []
        for selector in selectors:
            for link in self.first.locator(selector).all():
                path = urlsplit(link.get_attribute("href") or "").path
                if re.fullmatch(pattern, path) and path not in found:
                    found.append(path)
        if not found:
            raise SystemExit(f"no link to {pattern} on {self.first.url}")
        return found

    def follow(self, pattern: str, *selectors: str) -> None:
        self.visit(self.links(pattern, *selectors)[0])

    def log_in(self, login: str, password: str) -> None:
        for page in self.pages.values():
            page.goto(urljoin(self.base, "/login"), wait_until="load")
            form = page.locator("form[action$='/login']")
            form.locator("input[name=login]").fill(login)
            form.locator("input[name=password]").fill(password)
            with page.expect_navigation():
                form.locator("button[type=submit]").click()
            if urlsplit(page.url).path == "/login":
                raise SystemExit(f"could not log in as {login}")


def settle(page: Page) -> None:
    # The live updates (/events) keep one request open for good, so "network idle" may
    # never come on a logged-in page: wait for it a moment, then for the fonts.
    try:
        page.wait_for_load_state("networkidle", timeout=3000)
    except PlaywrightTimeout:
        pass
    page.evaluate("document.fonts.ready")


def guest_pages(guest: Devices) -> None:
    guest.visit("/")
    guest.shoot("forum")
    # The busiest of the topics the index shows as last active: a thread with answers.
    posts = {}
    for path in guest.links(r"/[pt]/\d+", "main a[href^='/p/']", "main a[href^='/t/']")[:6]:
        page = guest.first
        page.goto(urljoin(guest.base, path), wait_until="load")  # a post leads to its topic
        posts[urlsplit(page.url).path] = page.locator("article.post").count()
    guest.visit(max(posts, key=posts.__getitem__))
    guest.shoot("topic")
    guest.visit(f"/search?q={SEARCH_QUERY}")
    guest.shoot("search")


def customer_pages(customer: Devices) -> None:
    customer.visit("/inbox")
    customer.shoot("inbox")
    # An unread answer if there is one: the page a customer opens first.
    customer.follow(r"/inbox/\d+", "main .is-unread a[href^='/inbox/']", "main a[href^='/inbox/']")
    customer.shoot("inbox-conversation")
    customer.visit("/inbox/new")
    customer.shoot("inbox-new")


def staff_pages(staff: Devices) -> None:
    staff.visit("/staff")
    staff.shoot("staff-queue")
    staff.follow(r"/staff/t/\d+", "main a[href^='/staff/t/']")
    staff.shoot("staff-conversation")
    staff.visit("/staff/stats")
    staff.shoot("staff-stats")


def save(page: Page, path: Path) -> Path:
    """The visible window as a 256-colour PNG: a tenth of the size, the same to the eye."""
    image = Image.open(io.BytesIO(page.screenshot(full_page=False, animations="disabled")))
    image = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


if __name__ == "__main__":
    sys.exit(main())
