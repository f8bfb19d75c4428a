"""A value the cloud keeps refusing to send properly is quarantined once, not every run.

The smart-me ingest fetches a meter with a refused value again from where it was complete
(so a value sent properly later is not lost); before, every such run wrote the same
rejection to ``raw.rejected_readings`` again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

from vbatt.ingest.load import ingest_file, ingest_smartme
from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig

START = datetime(2025, 6, 1, tzinfo=UTC)
BAD = START + timedelta(minutes=30)


def _cloud(request: httpx.Request, twice: bool = False) -> httpx.Response:
    """Quarter-hour registers of M1; the one at BAD always arrives as null (``twice``: in
    each answer two copies of it, as a cloud that repeats a record sends it)."""
    if request.url.path == "/Devices/M1":
        return httpx.Response(200, json={"id": "M1", "counterReadingImport": 3.0})
    q = request.url.params
    ts = datetime.fromisoformat(q["startDate"])
    end = datetime.fromisoformat(q["endDate"])
    ts += (-ts.minute % 15) * timedelta(minutes=1)
    rows = []
    while ts <= end:
        k = (ts - START) / timedelta(minutes=15)
        value = None if ts == BAD else 0.1 * k
        rows.append(
            {
                "date": ts.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
                "deviceId": "M1",
                "values": [
                    {"obis": "1-0:1.8.0*255", "value": value},
                    {"obis": "1-0:2.8.0*255", "value": 0.0},
                ],
            }
        )
        if twice and ts == BAD:
            rows.append(rows[-1])
        ts += timedelta(minutes=15)
    return httpx.Response(200, json=rows)


def test_a_value_the_cloud_keeps_refusing_is_quarantined_once(pipeline):
    config = SmartMeConfig(base_url="https://api.smart-me.com", api_key="k", rate=None)
    runs = []
    with SmartMeClient(config, transport=httpx.MockTransport(_cloud)) as client:
        for hours in (2, 3, 4):  # three runs, each later; M1 never gets complete
            runs.append(
                ingest_smartme(
                    pipeline.engine,
                    client,
                    start=START,
                    end=START + timedelta(hours=hours),
                    lookback=timedelta(0),
                    meter_ids=["M1"],
                    raw_schema=pipeline.raw,
                )
            )
    assert [r.meters[0].rejected for r in runs] == [1, 1, 1]  # refused on every run
    with pipeline.engine.connect() as conn:
        held = conn.execute(
            text(f"select meter_id, reason from {pipeline.raw}.rejected_readings")
        ).all()
        readings = conn.execute(
            text(f"select count(distinct ts) from {pipeline.raw}.meter_readings")
        ).scalar()
    assert held == [("M1", "import register 1-0:1.8.0 is null or missing")]
    assert readings == 4 * 4  # 00:00 .. 04:00 without the refused 00:30


def test_a_refused_value_sent_twice_in_one_run_is_quarantined_as_reported(pipeline):
    """Only earlier runs make a rejection "already recorded": within a run, the table holds
    what the load reports, so a bad record sent twice in one answer is held twice."""
    config = SmartMeConfig(base_url="https://api.smart-me.com", api_key="k", rate=None)
    transport = httpx.MockTransport(lambda request: _cloud(request, twice=True))
    runs = []
    with SmartMeClient(config, transport=transport) as client:
        for hours in (2, 3):
            runs.append(
                ingest_smartme(
                    pipeline.engine,
                    client,
                    start=START,
                    end=START + timedelta(hours=hours),
                    lookback=timedelta(0),
                    meter_ids=["M1"],
                    raw_schema=pipeline.raw,
                )
            )
    assert [r.meters[0].rejected for r in runs] == [2, 2]
    with pipeline.engine.connect() as conn:
        held = conn.execute(
            text(f"select load_id, reason from {pipeline.raw}.rejected_readings")
        ).all()
    assert len(held) == runs[0].meters[0].rejected  # both copies, both of the first load
    assert len({load_id for load_id, _ in held}) == 1


# --- files re-sent with other bytes ----------------------------------------------------

HEADER = "meter_id,timestamp,import_kwh,export_kwh"
GOOD = ["M1,2025-06-01T00:00:00Z,1.5,2.5", "M1,2025-06-01T00:15:00Z,2,3"]
BAD_ROW = "M1,2025-06-01T00:30:00Z,abc,3"


def _export(path, rows: list[str], line_end: str = "\n"):
    path.write_bytes(line_end.join([HEADER, *rows, ""]).encode())
    return path


def _held(engine, raw: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text(f"select load_id, location, record from {raw}.rejected_readings order by ctid")
        ).all()


def test_a_file_re_sent_with_other_bytes_does_not_quarantine_its_bad_row_again(
    engine, raw, tmp_path
):
    """Re-exported (CRLF, another row order, a good row more): the load refuses the row
    again and says so, the quarantine keeps its first record only."""
    first = ingest_file(engine, _export(tmp_path / "june.csv", [*GOOD, BAD_ROW]), raw_schema=raw)
    again = ingest_file(
        engine,
        _export(
            tmp_path / "june-2.csv",
            [BAD_ROW, *GOOD[::-1], GOOD[0].replace("00:00", "00:45")],
            "\r\n",
        ),
        raw_schema=raw,
    )
    assert (first.status, again.status) == ("loaded", "loaded")
    assert _held(engine, raw) == [(first.load_id, "june.csv:4", BAD_ROW)]
    assert again.rejected == 1 and again.account.already_quarantined == 1
    report = " ".join(again.report())
    assert "1 quarantined" in report
    assert "1 of the quarantined values was quarantined already by an earlier load" in report
    assert report.endswith(
        f"where and what was refused: vbatt quarantine rejected --load {first.load_id}"
    )
    with engine.connect() as conn:
        account = conn.execute(
            text(f"select account from {raw}.loads where load_id = :l"), {"l": again.load_id}
        ).scalar_one()
    assert account["already_quarantined"] == 1


def test_the_same_bytes_are_skipped_and_new_bad_values_are_quarantined(engine, raw, tmp_path):
    """Identical bytes are the same file (skipped); a bad value not held before, and a bad
    row twice within one file, are stored as the load reports them."""
    path = _export(tmp_path / "june.csv", [*GOOD, BAD_ROW])
    first = ingest_file(engine, path, raw_schema=raw)
    same = ingest_file(engine, path, raw_schema=raw)
    other = BAD_ROW.replace("abc", "xyz")
    more = ingest_file(
        engine, _export(tmp_path / "more.csv", [BAD_ROW, other, other]), raw_schema=raw
    )
    assert same.status == "skipped" and same.load_id == first.load_id
    assert (more.rejected, more.account.already_quarantined) == (3, 1)
    assert [record for _, _, record in _held(engine, raw)] == [BAD_ROW, other, other]
    assert more.report()[-1].endswith(
        f"vbatt quarantine rejected --load {first.load_id};"
        f" vbatt quarantine rejected --load {more.load_id}"
    )


QUALIFIERS = Path(__file__).parents[1] / "data/mscons/variants/2.4c-profile-qty-qualifiers.edi"


def test_an_mscons_value_is_held_once_and_another_instant_is_another_value(engine, raw, tmp_path):
    """The QTY segment alone does not say which value it is (a series' values repeat it):
    the record names its interval, so the same unusable value a day later is held, and the
    interchange re-sent under another reference is not held again."""
    text_ = QUALIFIERS.read_text(encoding="latin-1")
    resent = tmp_path / "resent.edi"
    resent.write_text(text_.replace("VAR00001", "VAR00002"), encoding="latin-1")
    next_day = tmp_path / "next-day.edi"
    shifted = text_.replace("20250115", "20250116").replace("20250114", "20250115")
    next_day.write_text(shifted.replace("VAR00001", "VAR00003"), encoding="latin-1")
    loads = [ingest_file(engine, path, raw_schema=raw) for path in (QUALIFIERS, resent, next_day)]
    assert [load.rejected for load in loads] == [1, 1, 1]
    assert [load.account.already_quarantined for load in loads] == [0, 1, 0]
    held = [(load_id, record) for load_id, _, record in _held(engine, raw)]
    assert held == [
        (loads[0].load_id, "QTY+20:5.000 2025-01-15T00:00:00+00:00/2025-01-15T00:15:00+00:00"),
        (loads[2].load_id, "QTY+20:5.000 2025-01-16T00:00:00+00:00/2025-01-16T00:15:00+00:00"),
    ]
