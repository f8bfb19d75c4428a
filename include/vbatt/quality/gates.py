"""The checkpoints: which suites run when, how their failures count, and what is recorded.

A checkpoint validates each of its suites against a batch of the warehouse (a query in
the suite's ``meta.batch_query``) and ends ``passed``, ``warned`` or ``blocked``. A
``critical`` expectation blocks where the checkpoint may block (after the ledger, before
an export); everything else warns. Every run and each failure is written to
``raw.quality_runs`` / ``raw.quality_failures`` (the daily summary reads them), and each
run starts where the previous one of its checkpoint ended, so a run's cost follows the
new data.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from vbatt.quality.context import docs_lock, gx_context, publish_index, site_dir, write_summary
from vbatt.quality.result import Failure, QualityResult
from vbatt.quality.suites import load_suite, schema_names
from vbatt.quality.suites import parameters as suite_parameters
from vbatt.warehouse.db import get_engine
from vbatt.warehouse.migrate import check_schema_name, migrate

log = logging.getLogger(__name__)

EXAMPLES_KEPT = 5


@dataclass(frozen=True)
class Checkpoint:
    suites: tuple[str, ...]
    may_block: bool
    quarantines: bool = False


CHECKPOINTS = {
    "after_ingest": Checkpoint(("raw_readings",), may_block=False, quarantines=True),
    "after_ledger": Checkpoint(("meter_intervals", "ledger"), may_block=True),
    "before_export": Checkpoint(("exports",), may_block=True),
}


class QualityGateError(RuntimeError):
    """A blocking expectation failed; the message is the readable summary."""

    def __init__(self, result: QualityResult):
        self.result = result
        super().__init__(result.summary)


def _examples(result: dict, frame=None) -> list[dict]:
    """A few offending rows: SQL expectations return them; for a DataFrame batch, the
    rows at GX's unexpected indices; else the offending values."""
    rows = result.get("details", {}).get("unexpected_rows")
    if rows is None and frame is not None and result.get("unexpected_index_list"):
        indices = result["unexpected_index_list"][:EXAMPLES_KEPT]
        rows = frame.loc[indices].astype(object).where(frame.loc[indices].notna(), None)
        rows = rows.to_dict("records")
    if rows is None:
        rows = [{"value": v} for v in result.get("partial_unexpected_list", [])]
    return [dict(r) for r in rows[:EXAMPLES_KEPT]]


def _exception(info: dict | None) -> str | None:
    """GX reports an expectation that raised either flat or per metric; either way, say so
    (a gate that could not look must not pass)."""
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _count(result: dict) -> int | None:
    if "unexpected_count" in result:
        return int(result["unexpected_count"])
    observed = result.get("observed_value")
    return int(observed) if isinstance(observed, int | float) else None


def validate(*args, **kwargs) -> tuple[QualityResult, dict[str, dict]]:
    """See :func:`_validate`; GX prints (not logs) a hint about ``{batch}`` each time it
    re-reads a SQL expectation whose query it has filled in: kept out of the task logs."""
    with contextlib.redirect_stdout(io.StringIO()):
        return _validate(*args, **kwargs)


def _validate(
    context,
    checkpoint_name: str,
    suites: list[dict],
    batch: dict,
    parameters: dict,
    may_block: bool,
    frame=None,
) -> tuple[QualityResult, dict[str, dict]]:
    """Run ``suites`` (GX dicts) against their batches; the failures and failed configs.

    ``batch`` maps each suite's name to its GX batch definition, ``parameters`` are the
    ``$PARAMETER`` values, and ``frame`` is the DataFrame of a pandas batch.
    """
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier

    batch_parameters = None if frame is None else {"dataframe": frame}
    definitions = []
    for suite in suites:
        gx_suite = context.suites.add(ExpectationSuite(**suite))
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{checkpoint_name}:{suite['name']}",
                    data=batch[suite["name"]],
                    suite=gx_suite,
                )
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=checkpoint_name,
            validation_definitions=definitions,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": EXAMPLES_KEPT},
        )
    )
    run = checkpoint.run(
        batch_parameters=batch_parameters,
        expectation_parameters=parameters,
        run_id=RunIdentifier(run_name=checkpoint_name),
    )
    result = QualityResult(checkpoint=checkpoint_name)
    failed: dict[str, dict] = {}
    for validation in run.run_results.values():
        suite_name = validation.suite_name
        for outcome in validation.results:
            result.expectations += 1
            if error := _exception(outcome.exception_info):
                raise RuntimeError(
                    f"quality {checkpoint_name}: {suite_name}."
                    f"{outcome.expectation_config.meta.get('name')} could not run: {error}"
                )
            if outcome.success:
                continue
            config = outcome.expectation_config
            name = config.meta.get("name", config.type)
            critical = config.to_json_dict().get("severity", "critical") == "critical"
            result.failures.append(
                Failure(
                    suite=suite_name,
                    expectation=name,
                    level="block" if (critical and may_block) else "warn",
                    unexpected_count=_count(outcome.result),
                    examples=_examples(outcome.result, frame),
                    description=config.description or "",
                )
            )
            failed[name] = config.to_json_dict()
    return result, failed


def warehouse_source(context, engine: Engine):
    """A GX data source on the warehouse: PostgreSQL, or generic SQL for a Unix socket.

    GX's PostgresDatasource wants a host in the URL; the embedded warehouse is reached
    through a socket directory (``?host=/path``), which only the generic one accepts.
    """
    url = engine.url.render_as_string(hide_password=False)
    if engine.url.host:
        return context.data_sources.add_postgres("warehouse", connection_string=url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "a more specific PostgresDatasource may be..."
        return context.data_sources.add_sql("warehouse", connection_string=url)


def _ledger_watermarks(engine: Engine, raw: str, schema: str) -> tuple[str, str]:
    """(where after_ledger starts: the newest stamp a passing run covered, the newest now)."""
    with engine.connect() as conn:
        since = conn.execute(
            text(
                f"select max(checked_computed_at)::text from {raw}.quality_runs"
                " where checkpoint = 'after_ledger'"
            )
        ).scalar()
        ledger = conn.execute(
            text("select to_regclass(:t)"), {"t": f"{schema}_intermediate.int_battery_ledger"}
        ).scalar()
        if not ledger:
            raise ValueError(f"no ledger in {schema}_intermediate yet: run dbt (vbatt dbt run)")
        now = conn.execute(text(f"select max(computed_at)::text from {ledger}")).scalar()
    return since or "-infinity", now or "-infinity"


def _unchecked_loads(engine: Engine, raw: str) -> list[int]:
    """Loads after_ingest has not looked at: a set, so a load committed late is not missed."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    f"select load_id from {raw}.loads as l where not exists (select 1"
                    f" from {raw}.quality_checked_loads as c where c.load_id = l.load_id)"
                    " order by load_id"
                )
            ).scalars()
        )


def begin_run(engine: Engine, raw: str, checkpoint: str, scope: str = "") -> int:
    with engine.begin() as conn:
        return conn.execute(
            text(
                f"insert into {raw}.quality_runs (checkpoint, scope, outcome)"
                " values (:c, :s, 'running') returning run_id"
            ),
            {"c": checkpoint, "s": scope},
        ).scalar_one()


def finish_run(
    engine: Engine,
    raw: str,
    result: QualityResult,
    checked_loads: list[int] = (),
    checked_computed_at: str | None = None,
) -> None:
    """Record the outcome, each failure and what the run covered."""
    with engine.begin() as conn:
        conn.execute(
            text(
                f"update {raw}.quality_runs set finished_at = clock_timestamp(), outcome = :o,"
                " checked_computed_at = :t, summary = :summary, data_docs = :docs"
                " where run_id = :r"
            ),
            {
                "r": result.run_id,
                "o": result.outcome,
                "t": checked_computed_at,
                "summary": result.summary,
                "docs": str(result.data_docs or ""),
            },
        )
        for f in result.failures:
            conn.execute(
                text(
                    f"insert into {raw}.quality_failures"
                    " (run_id, suite, expectation, level, unexpected_count, examples)"
                    " values (:r, :s, :e, :l, :n, :x)"
                ),
                {
                    "r": result.run_id,
                    "s": f.suite,
                    "e": f.expectation,
                    "l": f.level,
                    "n": f.unexpected_count,
                    "x": json.dumps(f.examples, default=str, sort_keys=True),
                },
            )
        if checked_loads:
            conn.execute(
                text(
                    f"insert into {raw}.quality_checked_loads (load_id, run_id)"
                    " select unnest(cast(:ids as bigint[])), :r on conflict do nothing"
                ),
                {"ids": list(checked_loads), "r": result.run_id},
            )


def run_checkpoint(
    checkpoint: str,
    url: str | None = None,
    *,
    schema: str = "analytics",
    raw_schema: str = "raw",
    docs_dir: Path | None = None,
) -> QualityResult:
    """Validate what is new since this checkpoint's last run; record and return the result.

    ``after_ingest`` checks the loads it has not seen and quarantines the readings that
    fail a row-level expectation. ``after_ledger`` checks the rows computed since its last
    passing run: a blocked run does not move on, the next one checks the same rows again
    (plus what is new) until they pass.
    """
    from vbatt.quality.quarantine import quarantine_failures

    if checkpoint not in CHECKPOINTS or checkpoint == "before_export":
        raise ValueError(
            f"unknown checkpoint {checkpoint!r}: use after_ingest or after_ledger"
            " (exports: vbatt.quality.check_export)"
        )
    spec = CHECKPOINTS[checkpoint]
    raw, schema = check_schema_name(raw_schema), check_schema_name(schema)
    engine = get_engine(url)
    migrate(engine, raw)
    loads: list[int] = []
    since_computed = computed_now = "-infinity"
    if checkpoint == "after_ingest":
        loads = _unchecked_loads(engine, raw)
    else:
        since_computed, computed_now = _ledger_watermarks(engine, raw, schema)
    values = {
        **schema_names(schema, raw),
        "unchecked_load_ids": f"array[{', '.join(map(str, loads))}]::bigint[]",
        "since_computed_at": f"'{since_computed}'::timestamptz",
    }
    suites = [load_suite(name, values) for name in spec.suites]
    run_id = begin_run(engine, raw, checkpoint)
    context = gx_context(checkpoint, docs_dir)
    source = warehouse_source(context, engine)
    batches = {
        suite["name"]: source.add_query_asset(
            suite["name"], query=suite["meta"]["batch_query"]
        ).add_batch_definition_whole_table("new rows")
        for suite in suites
    }
    parameters = {k: v for suite in suites for k, v in suite_parameters(suite).items()}
    with docs_lock(docs_dir):  # GX rewrites the site: not while another run reads it
        result, failed = validate(context, checkpoint, suites, batches, parameters, spec.may_block)
    result.run_id, result.data_docs = run_id, site_dir(checkpoint, docs_dir) / "index.html"
    if spec.quarantines and failed:
        result.quarantined, late = quarantine_failures(
            engine, raw, schema, failed, suites[0]["meta"]["batch_query"], run_id
        )
        if late:
            result.notes.append(
                f"{late} failing readings were already in the ledger and stay there;"
                " fix them and run vbatt rebuild --full"
            )
    write_summary(checkpoint, result, docs_dir)
    publish_index(docs_dir)
    finish_run(
        engine,
        raw,
        result,
        checked_loads=loads,
        checked_computed_at=None if result.blocked else computed_now,
    )
    (log.warning if result.failures else log.info)("%s", result.summary)
    return result
