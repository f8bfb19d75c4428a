"""The data docs in a real browser, without the internet: Debian's chromium (Playwright).

GX writes its reports with Bootstrap, jQuery, Font Awesome and Vega from public CDNs; the
project serves copies (npm packages installed by ``make install``) from the docs folder.
The reports are served here from 127.0.0.1 only; a request to any other host is refused
and fails the test. Screenshots land in build/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.quality.conftest import battery_row, clean_readings
from tests.quality.test_quarantine import DIP

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make chromium installs it)"
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture
def served(pipeline, gate):
    """Two checkpoints' reports (one warned, one passed), served on 127.0.0.1."""
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings() + [DIP])
    assert gate.run("after_ingest").outcome == "warned"
    pipeline.run()
    assert gate.run("after_ledger").outcome == "passed"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(gate.docs_dir))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", gate.docs_dir
    server.shutdown()


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        page.requests = []  # every URL the page asked for
        page.problems = []

        def route(r):
            page.requests.append(r.request.url)
            if urlsplit(r.request.url).hostname == "127.0.0.1":
                r.continue_()
            else:
                r.abort()  # never leave this machine, even where there is internet

        page.route("**/*", route)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on(
            "response", lambda r: r.status >= 400 and page.problems.append(f"{r.status} {r.url}")
        )
        yield page
        browser.close()


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _only_local(page) -> None:
    hosts = {urlsplit(u).hostname for u in page.requests}
    assert hosts == {"127.0.0.1"}, sorted(u for u in page.requests if "127.0.0.1" not in u)
    assert page.problems == []


def test_the_index_says_per_checkpoint_what_passed_and_failed(served, page):
    url, _ = served
    page.goto(f"{url}/index.html", wait_until="networkidle")
    ingest = page.locator('li[data-site="after_ingest"]')
    ledger = page.locator('li[data-site="after_ledger"]')
    assert ingest.get_attribute("data-outcome") == "warned"
    assert ledger.get_attribute("data-outcome") == "passed"
    assert "1 failed" in ingest.locator(".counts").inner_text()
    assert "0 failed" in ledger.locator(".counts").inner_text()
    failed = ingest.locator("tr.failed").inner_text()
    assert "registers_non_decreasing_after_rebasing" in failed
    # Bootstrap's styles applied: its warning badge colour, its container width
    colour = ingest.locator(".badge").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(255, 193, 7)"
    _shot(page, "data_docs_index")
    _only_local(page)


def test_a_report_is_styled_with_its_scripts_and_fonts_from_this_machine(served, page):
    url, root = served
    [report] = (root / "after_ingest" / "validations").rglob("*.html")
    page.goto(f"{url}/{report.relative_to(root).as_posix()}", wait_until="networkidle")
    page.evaluate("document.fonts.ready")
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert font.startswith("-apple-system"), font  # Bootstrap 4's body font stack
    loaded = page.evaluate(
        "({jquery: typeof window.jQuery, vega: typeof window.vega,"
        " vegaEmbed: typeof window.vegaEmbed, table: typeof window.jQuery.fn.bootstrapTable,"
        " awesome: document.fonts.check('900 16px \"Font Awesome 6 Free\"')})"
    )
    assert loaded == {
        "jquery": "function",
        "vega": "object",
        "vegaEmbed": "function",
        "table": "function",
        "awesome": True,
    }
    assert page.locator("text=Unsuccessful Expectations").count() >= 1
    _shot(page, "data_docs_after_ingest")
    local = [u for u in page.requests if "/assets/" in u]
    assert any(u.endswith("bootstrap.min.css") for u in local)
    assert any(u.endswith(".woff2") for u in local)  # Font Awesome's font, from here
    _only_local(page)
