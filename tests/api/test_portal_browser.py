"""The partner portal in a real browser (Debian's chromium, Playwright, headless): add a
battery, change it from a date, end it, and see each change in the API; the fleet view and
the level a smaller capacity would clip. Screenshots in build/screenshots/portal-*.png.

Every page runs under the app's Content-Security-Policy: a violation (an inline script, a
style attribute, anything from elsewhere) is a console error, and console errors fail."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from tests.api import test_dashboard_browser as dashboard
from tests.api import test_writes as writes
from tests.api.conftest import SOLAR_METER, auth
from tests.api.test_dashboard_browser import CHROMIUM, close, loaded, shot

browser = dashboard.browser  # the same browser fixture as the other pages
stadtwerk_issued = writes.stadtwerk_issued  # a day issued to stadtwerk, as the API's tests
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make chromium installs it)"
)


@pytest.fixture
def page(browser):
    """A page whose script errors fail the test; refused writes (4xx of a form's POST or
    PATCH) are what some tests provoke, any other failed request is an error."""
    browser.clear_cookies()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.text.startswith("Failed to load resource")
            and errors.append(m.text)
        ),
    )
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and r.request.resource_type != "document"
            and not (r.request.method in ("POST", "PATCH") and r.status < 500)
            and errors.append(f"{r.status} {r.url}")
        ),
    )
    yield page
    page.close()
    assert errors == [], f"the page's scripts failed: {errors}"


def saved(page, form: str) -> None:
    page.wait_for_selector(f"{form}[data-state='saved']", timeout=15_000)


def test_add_change_and_end_a_battery(page, api_url, api_warehouse, client):
    key = api_warehouse.keys["solar-write"]
    bid = f"pb-{secrets.token_hex(3)}"
    page.goto(f"{api_url}/dashboard?key={key}")
    loaded(page)
    page.click("#add-battery")
    page.wait_for_selector("#new-form")
    page.fill("[name=battery_id]", bid)
    page.fill("[name=name]", "Solar battery Brunner")
    page.fill("[name=customer_id]", "k-501")
    page.fill("[name=meter_id]", SOLAR_METER)
    page.fill("[name=capacity_kwh]", "-1")
    page.fill("[name=start_date]", "2030-01-01")
    page.fill("[name=reset_date]", "2030-04-01")
    page.select_option("[name=reset_repeat]", "none")
    page.fill("[name=timezone]", "Europe/Atlantis")
    page.click("#new-form button[type=submit]")
    page.wait_for_selector("#new-form[data-state='refused']")
    # the server's messages, each next to its field
    assert "negative" in page.inner_text(".error[data-for=capacity_kwh]")
    assert "Europe/Atlantis" in page.inner_text(".error[data-for=timezone]")
    assert page.inner_text(".error[data-for=name]") == ""
    assert page.get_attribute("[name=capacity_kwh]", "aria-invalid") == "true"
    shot(page, "portal-add-refused")
    assert client.get(f"/v1/batteries/{bid}", headers=auth(key)).status_code == 404

    page.fill("[name=capacity_kwh]", "8")
    page.fill("[name=timezone]", "Europe/Zurich")
    page.click("#new-form button[type=submit]")
    page.wait_for_url(f"**/dashboard/batteries/{bid}")
    page.wait_for_selector("#portal[data-loaded='true']")
    battery = client.get(f"/v1/batteries/{bid}", headers=auth(key)).json()
    assert (battery["name"], battery["meter_id"], battery["capacity_kwh"]) == (
        "Solar battery Brunner",
        SOLAR_METER,
        8.0,
    )
    (first,) = client.get(f"/v1/batteries/{bid}/versions", headers=auth(key)).json()["items"]
    assert (first["reset_date"], first["reset_repeat"]) == ("2030-04-01", "none")
    assert page.locator("#versions tbody tr").count() == 1
    assert page.input_value("#change-form [name=capacity_kwh]") == "8"
    assert not page.is_visible("#change-form .confirm[data-code=version_exists]")

    # "Change from date …": only what changes is sent, the rest carries over
    page.fill("#change-form [name=valid_from]", "2030-06-01")
    page.fill("#change-form [name=capacity_kwh]", "12")
    page.fill("#change-form [name=reason]", "upgrade to 12 kWh")
    page.click("#change-form button[type=submit]")
    saved(page, "#change-form")
    versions = client.get(f"/v1/batteries/{bid}/versions", headers=auth(key)).json()["items"]
    assert [(v["valid_from"], v["capacity_kwh"], v["meter_id"]) for v in versions] == [
        ("2030-01-01", 8.0, SOLAR_METER),
        ("2030-06-01", 12.0, SOLAR_METER),
    ]
    assert versions[1]["reason"] == "upgrade to 12 kWh"
    rows = page.locator("#versions tbody tr")
    assert rows.count() == 2 and rows.nth(1).get_attribute("data-valid-from") == "2030-06-01"

    # the same date again: the server's 409 offers "replace"
    page.fill("#change-form [name=valid_from]", "2030-06-01")
    page.fill("#change-form [name=name]", "Solar battery Brunner-Huber")
    page.click("#change-form button[type=submit]")
    page.wait_for_selector("#change-form[data-state='refused']")
    assert page.is_visible("#change-form .confirm[data-code=version_exists]")
    page.check("#change-form [name=replace]")
    page.click("#change-form button[type=submit]")
    saved(page, "#change-form")
    versions = client.get(f"/v1/batteries/{bid}/versions", headers=auth(key)).json()["items"]
    assert (versions[1]["name"], versions[1]["capacity_kwh"]) == ("Solar battery Brunner-Huber", 12)

    # a change between two versions shows (and is compared with) the version in force at
    # its date, from which the server carries the unsent fields over, not the latest one
    page.fill("#change-form [name=valid_from]", "2030-03-01")
    assert page.input_value("#change-form [name=capacity_kwh]") == "8"
    assert page.input_value("#change-form [name=name]") == "Solar battery Brunner"
    page.fill("#change-form [name=capacity_kwh]", "12")  # the latest's value: still a change
    page.click("#change-form button[type=submit]")
    saved(page, "#change-form")
    versions = client.get(f"/v1/batteries/{bid}/versions", headers=auth(key)).json()["items"]
    assert [(v["valid_from"], v["name"], v["capacity_kwh"]) for v in versions] == [
        ("2030-01-01", "Solar battery Brunner", 8.0),
        ("2030-03-01", "Solar battery Brunner", 12.0),
        ("2030-06-01", "Solar battery Brunner-Huber", 12.0),
    ]

    # "End battery"
    page.fill("#end-form [name=end_date]", "2031-01-01")
    page.click("#end-form button[type=submit]")
    saved(page, "#end-form")
    assert page.inner_text("#end-date-now") == "2031-01-01"
    assert client.get(f"/v1/batteries/{bid}", headers=auth(key)).json()["end_date"] == "2031-01-01"
    shot(page, "portal-battery")


def test_a_new_battery_in_issued_periods_asks_to_backdate(
    stadtwerk_issued, page, api_url, api_warehouse, client
):
    """The "Add battery" form with a start inside a day stadtwerk was sent: the API's 409
    shows the backdate confirmation (as the change and end forms do), and once it is
    ticked the battery is created. (stadtwerk_issued first: it removes the battery after
    the page is closed, not under the page's last requests.)"""
    key, made = stadtwerk_issued
    bid = f"pn-{secrets.token_hex(3)}"
    made.append(bid)
    page.goto(f"{api_url}/dashboard/batteries/new?key={api_warehouse.keys['stadtwerk-write']}")
    page.wait_for_selector("#new-form")
    confirm = "#new-form .confirm[data-code=backdated]"
    assert not page.is_visible(confirm)
    page.fill("[name=battery_id]", bid)
    page.fill("[name=name]", "Sonnenspeicher Graf")
    page.fill("[name=customer_id]", "c-31")
    page.fill("[name=meter_id]", "SIM-0003")
    page.fill("[name=capacity_kwh]", "4")
    page.fill("[name=start_date]", writes.ISSUED_DAY.isoformat())
    page.click("#new-form button[type=submit]")
    page.wait_for_selector("#new-form[data-state='refused']")
    assert page.is_visible(confirm)
    assert "already issued" in page.inner_text("#new-form .form-error")
    assert client.get(f"/v1/batteries/{bid}", headers=key).status_code == 404
    shot(page, "portal-add-backdated")
    page.check("#new-form [name=backdate]")
    page.click("#new-form button[type=submit]")
    page.wait_for_url(f"**/dashboard/batteries/{bid}")
    battery = client.get(f"/v1/batteries/{bid}", headers=key).json()
    assert battery["start_date"] == writes.ISSUED_DAY.isoformat()


def test_a_smaller_capacity_shows_what_it_would_clip(page, api_url, api_warehouse):
    days = api_warehouse.query(
        "select local_date, level_end_kwh from {marts}.battery_daily"
        " where battery_id = 'b-ewa-1' order by local_date"
    )
    day, level = next(
        (d["local_date"] + timedelta(days=1), d["level_end_kwh"])
        for d in days[1:-1]
        if d["level_end_kwh"] > 0.2
    )
    capacity = round(level / 2, 3)
    page.goto(f"{api_url}/dashboard/batteries/b-ewa-1?key={api_warehouse.keys['ewa-write']}")
    loaded(page)
    page.wait_for_selector("#portal[data-loaded='true']")
    # the house meters offered: those of the partner's batteries
    meters = [o.get_attribute("value") for o in page.locator("#meters option").all()]
    assert meters == ["SIM-0001", "SIM-0002"]
    page.fill("#change-form [name=valid_from]", day.isoformat())
    page.fill("#change-form [name=capacity_kwh]", str(capacity))
    page.wait_for_selector("#clip-note:not([hidden])")
    note = page.inner_text("#clip-note")
    assert f"holds {level:.2f} kWh at {day.isoformat()} 00:00" in note
    assert f"{level - capacity:.2f} kWh would be forfeited" in note
    shot(page, "portal-clip")
    page.fill("#change-form [name=capacity_kwh]", str(round(level * 2, 3)))  # no clip
    page.wait_for_selector("#clip-note", state="hidden")


def test_fleet_view_and_billing_csv(page, api_url, api_warehouse, client):
    key = api_warehouse.keys["ewa"]
    fleet = client.get("/v1/fleet", headers=auth(key)).json()
    page.goto(f"{api_url}/dashboard?key={key}")
    loaded(page)
    page.wait_for_selector("#fleet[data-loaded='true']")
    assert page.inner_text("#fleet-batteries") == "2"
    assert close(page.inner_text("#fleet-level"), fleet["level_kwh"])
    for column in ("charge", "discharge", "overflow", "shortfall", "forfeited"):
        shown = page.inner_text(f"#fleet-{column}")
        assert close(shown, fleet["current_periods"][f"{column}_kwh"]), column
    assert page.locator("#add-battery").count() == 0  # a read-only key: no forms
    download = page.request.get(api_url + page.get_attribute("#csv-fleet", "href"))
    assert download.ok
    lines = download.text().strip().splitlines()
    assert lines[0].startswith("battery_id,period_start")
    rows = api_warehouse.query(
        "select count(*) as n from {marts}.settlement_periods"
        " where battery_id in ('b-ewa-1', 'b-ewa-2')"
    )
    assert len(lines) - 1 == rows[0]["n"]
    shot(page, "portal-fleet")
