"""Partner files are validated with messages that name the file and the field; periods
are local days and months; monthly partners are due once their month is settled."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from vbatt.exports.partners import PartnerConfigError, get_partner, load_partner, load_partners
from vbatt.exports.period import day_period, parse_period
from vbatt.exports.schedule import periods_due

REPO_PARTNERS = Path(__file__).resolve().parents[2] / "partners"
GOOD = {
    "partner_id": "acme",
    "name": "Acme",
    "sender": {"id": "9900000000017"},
    "receiver": {"id": "9900000000024"},
    "formats": [{"format": "csv"}],
}


def write(tmp_path: Path, data: dict, name: str = "acme") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_the_demo_partners_load():
    partners = load_partners(REPO_PARTNERS)
    assert set(partners) == {"ewa", "stadtwerk"}
    assert partners["ewa"].metering_point("demo-b1").startswith("CH")
    assert partners["stadtwerk"].metering_point("demo-b4") == "demo-b4"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"formats": [{"format": "xls"}]}, "formats.0.format"),
        ({"formats": []}, "formats"),
        ({"formats": [{"format": "csv"}, {"format": "csv"}]}, "appear twice"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"obis": {"charge": "1.29"}}, "not an OBIS code"),
        ({"obis": {"battery": "1-1:1.29.0"}}, "unknown channel"),
        ({"channels": ["charge", "sunshine"]}, "unknown channel"),
        ({"batteries": {"b1": {"metering_point": "CH123"}}}, "33 characters"),
        ({"batteries": {"b1": {"metering_point": "ch-lower"}}}, "upper-case"),
        ({"sender": {"id": "99 00"}}, "sender.id"),
        ({"schedule": "hourly"}, "schedule"),
        ({"colour": "blue"}, "colour"),
        ({"partner_id": "other"}, "must match the file name"),
    ],
)
def test_bad_partner_files_are_refused_naming_the_field(tmp_path, change, message):
    path = write(tmp_path, {**GOOD, **change})
    with pytest.raises(PartnerConfigError, match="acme.yaml") as refused:
        load_partner(path)
    assert message in str(refused.value)


def test_a_missing_partner_lists_the_known_ones(tmp_path):
    write(tmp_path, GOOD)
    with pytest.raises(PartnerConfigError, match=r"no partner 'nope'.*known: acme"):
        get_partner(tmp_path, "nope")
    (tmp_path / "broken.yaml").write_text("formats: [unclosed")
    with pytest.raises(PartnerConfigError, match="broken.yaml: not valid YAML"):
        load_partners(tmp_path)


def test_days_are_local_with_dst_and_months_span_them():
    spring, autumn = (
        day_period(date(2025, 3, 30), "Europe/Zurich"),
        day_period(date(2025, 10, 26), "Europe/Zurich"),
    )
    assert (spring.expected_intervals, autumn.expected_intervals) == (92, 100)
    assert spring.start_utc == datetime(2025, 3, 29, 23, tzinfo=UTC)
    march = parse_period("2025-03", "Europe/Zurich")
    assert (march.first_day, march.last_day, march.expected_intervals) == (
        date(2025, 3, 1),
        date(2025, 3, 31),
        31 * 96 - 4,
    )
    assert parse_period("2025-12", "Europe/Zurich").end_utc == datetime(
        2025, 12, 31, 23, tzinfo=UTC
    )
    for bad in ("2025-13", "25-01-01", "yesterday"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_period(bad, "Europe/Zurich")


def test_monthly_partners_are_due_after_the_last_day_only(tmp_path):
    monthly = load_partner(write(tmp_path, {**GOOD, "schedule": "monthly"}))
    daily = load_partner(write(tmp_path, GOOD))
    assert periods_due(monthly, date(2025, 2, 27)) == []
    assert [p.label for p in periods_due(monthly, date(2025, 2, 28))] == ["2025-02"]
    assert [p.label for p in periods_due(daily, date(2025, 2, 27))] == ["2025-02-27"]
