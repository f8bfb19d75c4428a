"""The battery page live, in Debian's chromium: the gauge, the power and today's chart move
after a push without a reload; provisional and stale values are marked; the page works
on a phone (no sideways scrolling, a web app manifest with icons, nothing from elsewhere).
Screenshots land in build/screenshots/ with the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.api import test_dashboard_browser as dashboard
from tests.api.test_dashboard_browser import CHROMIUM, close, loaded, shot
from tests.api.test_live_api import ledger, push

browser, page = dashboard.browser, dashboard.page  # the same fixtures as the other pages
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make chromium installs it)"
)


def fraction(p) -> float:
    return float(p.get_attribute("#gauge", "data-fraction"))


def test_the_gauge_moves_after_a_push_and_fits_a_phone(page, live_url, live_warehouse):
    lw, b = live_warehouse, "b-live-3"
    reg = ledger(lw, b)
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: r.url.startswith((live_url, "data:")) or elsewhere.append(r.url),
    )
    page.goto(f"{live_url}/dashboard/batteries/{b}?key={lw.key}")
    loaded(page)
    page.wait_for_selector("body[data-events='1']")  # the stream's first event is in
    assert fraction(page) == pytest.approx(reg["level_kwh"] / 5.0, abs=1e-4)
    assert close(page.inner_text("#level"), reg["level_kwh"])
    # the ledger ended 30 to 45 minutes ago and nothing newer came: stale, not provisional
    assert page.get_attribute("body", "data-live") == "stale"
    assert page.locator("#live-state .badge.provisional").count() == 0
    assert page.locator("#chart-power rect.provisional").count() == 0

    at = datetime.now(UTC).replace(microsecond=0)
    push(lw, b, at, 0.1, 2.1, power=-4.0)  # 2 kWh net into the battery since the ledger
    # (a Playwright expectation, not wait_for_function: the page's CSP forbids eval)
    expect(page.locator("body")).to_have_attribute("data-live", "provisional", timeout=5_000)
    want = reg["level_kwh"] + 2.0
    assert fraction(page) == pytest.approx(want / 5.0, abs=1e-4)
    assert close(page.inner_text("#level"), want)
    assert page.inner_text("#power") == "+4.00"
    assert page.inner_text("#power-state") == "charging"
    assert page.locator("#live-state .badge.provisional").is_visible()
    assert page.locator("#live-state .badge.stale").count() == 0
    assert page.get_attribute("body", "data-events") == "2"  # moved without a reload
    zurich = ZoneInfo("Europe/Zurich")
    if (lw.ledger_end - timedelta(minutes=15)).astimezone(zurich).date() == at.astimezone(
        zurich
    ).date():  # the day shown holds the live quarter hours
        assert page.locator("#chart-power rect.provisional").count() >= 2
    shot(page, "battery-live")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator("#gauge").bounding_box()["width"] <= 390
    shot(page, "battery-phone")

    manifest_href = page.get_attribute("link[rel=manifest]", "href")
    manifest = page.request.get(live_url + manifest_href)
    assert manifest.ok and manifest.headers["content-type"] == "application/manifest+json"
    icons = manifest.json()["icons"]
    assert {"192x192", "512x512"} <= {i["sizes"] for i in icons}
    for icon in icons:
        assert page.request.get(live_url + icon["src"]).ok
    assert elsewhere == []
