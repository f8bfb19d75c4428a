"""The dashboard in a real browser: Debian's chromium driven by Playwright, headless.

Numbers on the pages are compared with the warehouse; screenshots land in
build/screenshots/ for people to look at. `make test` installs chromium (make target
`chromium`); without it these tests skip and say so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make chromium installs it)"
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
FLAGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser):
    browser.clear_cookies()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.text.startswith("Failed to load resource")  # seen below, with the URL
            and errors.append(m.text)
        ),
    )
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and r.request.resource_type != "document"  # pages' statuses are the tests' business
            and errors.append(f"{r.status} {r.url}")
        ),
    )
    yield page
    page.close()
    assert errors == [], f"the page's scripts failed: {errors}"


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def loaded(page) -> None:
    page.wait_for_selector("body[data-loaded='true']", timeout=15_000)


def shown(page, selector: str) -> float:
    return float(page.inner_text(selector).replace("+", "").replace(" %", ""))


def close(text: str, value: float, digits: int = 2) -> bool:
    """The page rounds with toFixed: allow half a unit of the last shown digit."""
    return abs(float(text.replace("+", "")) - value) <= 0.5 * 10**-digits + 1e-9


def test_battery_page_shows_the_warehouse_numbers(page, api_url, api_warehouse):
    reg = api_warehouse.query(
        "select * from {marts}.battery_registers where battery_id = 'b-ewa-1'"
    )[0]
    key = api_warehouse.keys["ewa"]
    page.goto(f"{api_url}/dashboard/batteries/b-ewa-1?key={key}")
    assert "key=" not in page.url  # the key went into a cookie
    loaded(page)
    assert close(page.inner_text("#level"), reg["level_kwh"])
    assert close(page.inner_text("#power"), reg["active_power_kw"])
    assert close(page.inner_text("#charged-total"), reg["charged_total_kwh"])
    assert close(page.inner_text("#discharged-total"), reg["discharged_total_kwh"])
    share = 100 * reg["estimated_intervals"] / reg["intervals"]
    assert close(page.inner_text("#estimated-share").removesuffix(" %"), share, 1) and share > 0
    fraction = float(page.get_attribute("#gauge", "data-fraction"))
    assert fraction == pytest.approx(reg["level_kwh"] / reg["capacity_kwh"], abs=1e-4)
    assert page.inner_text("#capacity") == "of 5.0 kWh"
    # the local day of the latest data, in quarter hours: one bar each
    last_day = api_warehouse.query(
        "select * from {marts}.battery_daily where battery_id = 'b-ewa-1'"
        " order by local_date desc limit 1"
    )[0]
    assert page.locator("#chart-power rect").count() == last_day["intervals"]
    assert page.locator("#daily tbody tr").count() == 1
    shot(page, "battery-day")

    for period in ("week", "month", "year"):
        page.click(f".periods [data-period='{period}']")
        page.wait_for_selector(f"body[data-period='{period}'][data-loaded='true']")
        shot(page, f"battery-{period}")

    page.click(".periods [data-period='month']")
    page.wait_for_selector("body[data-period='month'][data-loaded='true']")
    page.click("#prev")  # June 2025
    # (Playwright's expect polls without eval, which the pages' CSP forbids)
    expect(page.locator("#period-label")).to_have_text("June 2025")
    loaded(page)
    days = api_warehouse.query(
        "select * from {marts}.battery_daily where battery_id = 'b-ewa-1'"
        " and local_date between '2025-06-01' and '2025-06-30' order by local_date desc"
    )
    rows = page.locator("#daily tbody tr")
    assert rows.count() == len(days) == 7
    for i, day in enumerate(days):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == day["local_date"].isoformat()
        for cell, column in zip(
            cells[1:8],
            (
                "import_kwh",
                "export_kwh",
                "charge_kwh",
                "discharge_kwh",
                "overflow_kwh",
                "shortfall_kwh",
                "level_end_kwh",
            ),
            strict=True,
        ):
            assert close(cell, day[column]), (day["local_date"], column, cell)
        assert cells[8] == f"{day['estimated_intervals']} / {day['intervals']}"
    shot(page, "battery-june")

    href = page.get_attribute("#csv-intervals", "href")
    download = page.request.get(api_url + href)
    assert download.ok
    lines = download.text().strip().splitlines()
    assert lines[0].startswith("interval_start,interval_end,import_kwh")
    assert len(lines) - 1 == sum(d["intervals"] for d in days)


def test_partner_page_lists_and_searches_its_batteries(page, api_url, api_warehouse):
    regs = {
        r["battery_id"]: r
        for r in api_warehouse.query(
            "select * from {marts}.battery_registers where partner_id = 'ewa'"
        )
    }
    page.goto(f"{api_url}/dashboard?key={api_warehouse.keys['ewa']}")
    loaded(page)
    rows = page.locator("#batteries tbody tr")
    assert rows.count() == 2
    for i in range(2):
        row = rows.nth(i)
        reg = regs[row.get_attribute("data-battery")]
        assert close(row.locator(".level").inner_text(), reg["level_kwh"])
        share = 100 * reg["estimated_intervals"] / reg["intervals"]
        assert close(row.locator(".estimated").inner_text().removesuffix(" %"), share, 1)
        local = reg["reading_at"].astimezone(__import__("zoneinfo").ZoneInfo("Europe/Zurich"))
        assert row.locator(".reading-at").inner_text() == local.strftime("%d/%m/%Y, %H:%M")
    shot(page, "partner")

    page.fill("#search", "Keller")
    expect(page.locator("#batteries tbody tr")).to_have_count(1)
    loaded(page)
    assert rows.first.get_attribute("data-battery") == "b-ewa-2"
    page.click("#batteries tbody a")
    loaded(page)
    assert page.url.endswith("/dashboard/batteries/b-ewa-2")
    assert page.inner_text("#capacity") == "unlimited capacity"


def test_customer_sees_only_its_battery(page, api_url, api_warehouse):
    page.goto(f"{api_url}/dashboard/login")
    page.fill("#key", "vb_wrong")
    page.click("button[type=submit]")
    assert page.inner_text("#note") == "That key is not valid."
    page.fill("#key", api_warehouse.keys["c-1"])
    page.click("button[type=submit]")
    loaded(page)
    assert page.locator("#batteries tbody tr").all_inner_texts()[0].startswith("b-ewa-1")
    assert page.locator("#batteries tbody tr").count() == 1
    response = page.goto(f"{api_url}/dashboard/batteries/b-ewa-2")
    assert response.status == 404
    assert page.inner_text("h1") == "404"
    shot(page, "customer-404")
