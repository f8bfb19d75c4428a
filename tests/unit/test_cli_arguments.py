"""Bad dates and periods on the command line: the subcommand's own usage and a sentence
saying what to write, never Python's "invalid fromisoformat value"; no warehouse needed."""

from __future__ import annotations

import pytest

from vbatt import cli
from vbatt.exports.period import parse_period


def _refused(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv))
    assert exit_.value.code == 2
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("value", ["2025-13-01", "yesterday", "01.06.2025"])
def test_rebuild_from_a_bad_date_says_how_to_write_one(capsys, value):
    err = _refused(capsys, "rebuild", "--from", value)
    assert err.startswith("usage: vbatt rebuild")
    assert f"argument --from: {value!r}: give a date as YYYY-MM-DD" in err
    assert "fromisoformat" not in err


def test_rebuild_without_from_or_full_shows_the_usage_of_rebuild(capsys):
    err = _refused(capsys, "rebuild")
    assert err.startswith("usage: vbatt rebuild")
    assert "rebuild needs --from DATE or --full" in err


def test_fetch_with_a_bad_instant_says_how_to_write_one(capsys):
    err = _refused(capsys, "fetch", "--start", "yesterday", "--end", "2026-11-02T00:00Z")
    assert err.startswith("usage: vbatt fetch")
    assert "argument --start: 'yesterday': give an instant as YYYY-MM-DDTHH:MMZ" in err
    assert "isoformat" not in err


def test_a_period_of_a_day_the_month_lacks_is_named():
    with pytest.raises(ValueError) as refused:
        parse_period("2025-06-31", "Europe/Zurich")
    assert str(refused.value) == "period 2025-06-31: no such day; give YYYY-MM-DD or YYYY-MM"


def test_export_of_a_day_the_month_lacks_exits_2_with_the_sentence(capsys, tmp_path, monkeypatch):
    from vbatt.settings import get_settings

    (tmp_path / "ewa.yaml").write_text(
        "partner_id: ewa\nname: E\nsender: {id: '9900000000017'}\n"
        "receiver: {id: '9900000000024'}\nformats: [{format: csv}]\n"
    )
    monkeypatch.setenv("VBATT_PARTNERS_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert cli.main(["export", "--partner", "ewa", "--period", "2025-06-31"]) == 2
    finally:
        get_settings.cache_clear()
    err = " ".join(capsys.readouterr().err.split())
    assert "period 2025-06-31: no such day; give YYYY-MM-DD or YYYY-MM" in err
