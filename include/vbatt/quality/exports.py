"""Before a partner's files go out: do they carry what the warehouse holds?

The export code describes what it wrote as a DataFrame (``battery_id, channel,
value_count, sum_kwh``, one row per battery and channel); this module sets the
warehouse's figures for the same partner and period beside it (``battery_intervals``,
quarter hours in ``[start_utc, end_utc)``) and validates the pair with the exports
suite. A blocked result keeps that partner's files back; other partners are not
affected.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from vbatt.exports.channels import CHANNEL_NAMES, PROFILE_CHANNELS
from vbatt.quality.context import docs_lock, gx_context, publish_index, site_dir, write_summary
from vbatt.quality.gates import CHECKPOINTS, begin_run, finish_run, validate
from vbatt.quality.result import QualityResult
from vbatt.quality.suites import load_suite, parameters
from vbatt.warehouse.db import get_engine
from vbatt.warehouse.migrate import check_schema_name, migrate

EXPORTED_COLUMNS = ("battery_id", "channel", "value_count", "sum_kwh")
# profile channels carry one value per quarter hour, each a column of battery_intervals;
# register channels (level, totals) are readings at instants and are not compared here
INTERVAL_COLUMNS = {c.name: f"{c.name}_kwh" for c in PROFILE_CHANNELS}


def warehouse_series(
    engine, schema: str, partner_id: str, start_utc, end_utc, channels, battery_ids=None
):
    """Per battery of the partner (or those of ``battery_ids``) and channel: quarter hours
    and their sum in the period."""
    import pandas as pd

    sums = ", ".join(f"sum({INTERVAL_COLUMNS[c]}) as {c}" for c in channels)
    with engine.connect() as conn:
        if battery_ids is not None:  # the batteries the export was made of (checked by it)
            which, params = "i.battery_id = any(:ids)", {"ids": list(battery_ids)}
        else:
            which = (
                f"i.battery_id in (select battery_id from {schema}_marts.battery_registers"
                " where partner_id = :p)"
            )
            params = {"p": partner_id}
        rows = conn.execute(
            text(
                f"select i.battery_id, count(*) as n{', ' + sums if sums else ''}"
                f" from {schema}_marts.battery_intervals as i"
                f" where {which} and i.interval_start >= :s and i.interval_start < :e"
                f" group by i.battery_id"
            ),
            {**params, "s": start_utc, "e": end_utc},
        ).all()
    records = [
        {
            "battery_id": r.battery_id,
            "channel": c,
            "warehouse_count": int(r.n),
            "warehouse_sum_kwh": float(getattr(r, c)),
        }
        for r in rows
        for c in channels
    ]
    return pd.DataFrame(
        records, columns=["battery_id", "channel", "warehouse_count", "warehouse_sum_kwh"]
    )


def compare_frame(exported, warehouse, rounding_kwh: float):
    """One row per battery and channel on either side, with what the suite checks."""
    import pandas as pd

    frame = pd.merge(
        exported.rename(columns={"value_count": "exported_count", "sum_kwh": "exported_sum_kwh"}),
        warehouse,
        on=["battery_id", "channel"],
        how="outer",
        sort=True,
    )
    frame["sum_difference_kwh"] = (frame["exported_sum_kwh"] - frame["warehouse_sum_kwh"]).abs()
    frame["allowed_difference_kwh"] = rounding_kwh * frame["warehouse_count"]
    return frame.reset_index(drop=True)


def check_export(
    url: str | None,
    partner_id: str,
    start_utc: datetime,
    end_utc: datetime,
    exported,
    *,
    schema: str = "analytics",
    raw_schema: str = "raw",
    docs_dir: Path | None = None,
    channels: list[str] | None = None,
    battery_ids: list[str] | None = None,
) -> QualityResult:
    """Validate what a partner's files contain for ``[start_utc, end_utc)``; record it.

    ``exported`` has the columns ``battery_id, channel, value_count, sum_kwh``. Only
    channels with one value per quarter hour are compared (register channels such as
    ``charged_total`` carry readings, not intervals, and are listed in the notes).
    ``channels`` are those the partner receives (default: the profile channels): a
    series of them missing from the files fails, even when the files hold none at all.
    ``battery_ids`` limits the comparison to the batteries the partner receives (its
    configuration may list a subset of its batteries).
    """
    import pandas as pd

    missing = [c for c in EXPORTED_COLUMNS if c not in exported.columns]
    if missing:
        raise ValueError(f"the exported frame lacks column(s) {', '.join(missing)}")
    raw, schema = check_schema_name(raw_schema), check_schema_name(schema)
    engine = get_engine(url)
    migrate(engine, raw)
    exported = pd.DataFrame(exported.loc[:, list(EXPORTED_COLUMNS)])
    unknown = sorted(set(exported["channel"]) - set(CHANNEL_NAMES))
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; known: {', '.join(CHANNEL_NAMES)}")
    skipped = sorted(set(exported["channel"]) - set(INTERVAL_COLUMNS))
    exported = exported[exported["channel"].isin(INTERVAL_COLUMNS)]
    # the channels the partner should have received, whether or not the files hold them
    expected = channels if channels is not None else list(INTERVAL_COLUMNS)
    if unknown := sorted(set(expected) - set(CHANNEL_NAMES)):
        raise ValueError(f"unknown channel(s) {unknown}; known: {', '.join(CHANNEL_NAMES)}")
    channels = sorted((set(expected) & set(INTERVAL_COLUMNS)) | set(exported["channel"]))
    suite = load_suite("exports")
    params = parameters(suite)
    frame = compare_frame(
        exported,
        warehouse_series(engine, schema, partner_id, start_utc, end_utc, channels, battery_ids),
        params["export_rounding_kwh"],
    )
    scope = f"{partner_id} {start_utc.isoformat()}..{end_utc.isoformat()}"
    run_id = begin_run(engine, raw, "before_export", scope)
    site = f"before_export/{partner_id}"
    context = gx_context(site, docs_dir)
    batch = (
        context.data_sources.add_pandas("export")
        .add_dataframe_asset(f"{partner_id}")
        .add_batch_definition_whole_dataframe("files")
    )
    with docs_lock(docs_dir):  # the formats of one partner are checked in parallel
        result, _ = validate(
            context,
            "before_export",
            [suite],
            {"exports": batch},
            params,
            CHECKPOINTS["before_export"].may_block,
            frame=frame,
        )
    result.scope, result.run_id = scope, run_id
    result.data_docs = site_dir(site, docs_dir) / "index.html"
    write_summary(site, result, docs_dir)
    publish_index(docs_dir)
    if skipped:
        result.notes.append(f"not compared (register channels): {', '.join(skipped)}")
    finish_run(engine, raw, result)
    return result
