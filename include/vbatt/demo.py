"""`make demo`: the whole product on simulated PV households, through Airflow.

Starts the embedded warehouse and the simulated smart-me cloud, registers two partners'
customers with different batteries, runs meter_ingest (which fetches each new meter's
history since its battery started, 7 days before the first demo run), battery_ledger (dbt through Cosmos) and
daily_settlement with ``dag.test()``, and prints what each customer's battery did.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, date, datetime, timedelta

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

console = Console(width=None if sys.stdout.isatty() else 140)

DEMO_DAYS = 7
# (battery, name, partner, customer, meter, capacity, reset in days from start or None)
DEMO_BATTERIES = [
    ("demo-b1", "Solar battery Meier", "ewa", "c-1001", "SIM-0001", 5.0, None),
    ("demo-b2", "Solar battery Keller", "ewa", "c-1002", "SIM-0002", 10.0, 4),
    ("demo-b3", "Solar battery Huber", "ewa", "c-1003", "SIM-0003", 0.0, None),
    ("demo-b4", "Sonnenspeicher Weber", "stadtwerk", "c-2001", "SIM-0004", 2.5, None),
    ("demo-b5", "Sonnenspeicher Frei", "stadtwerk", "c-2002", "SIM-0005", 7.5, 2),
    ("demo-b5-xl", "Sonnenspeicher Frei XL (offer)", "stadtwerk", "c-2002", "SIM-0005", 20.0, None),
]


def demo_start(engine, today: date, raw_schema: str = "raw") -> date:
    """When the demo batteries start: a week before the first demo run on this warehouse.

    A start_date is fixed for a battery's life, so a demo run on a later day keeps the one
    stored (meter_ingest catches the meters up from where the last run left them) instead
    of being refused for moving it."""
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                f"select min(start_date) from {raw_schema}.batteries where battery_id = any(:ids)"
            ),
            {"ids": [b[0] for b in DEMO_BATTERIES]},
        ).scalar()
    return stored or today - timedelta(days=DEMO_DAYS)


def demo_batteries(start: date) -> list[dict]:
    return [
        {
            "battery_id": b,
            "name": n,
            "partner_id": p,
            "customer_id": c,
            "meter_id": m,
            "capacity_kwh": cap,
            "start_date": start,
            "reset_date": start + timedelta(days=r) if r else None,
            "reset_repeat": "yearly",
            "end_date": None,
            "timezone": "Europe/Zurich",
            "initial_level_kwh": 0.0,
        }
        for b, n, p, c, m, cap, r in DEMO_BATTERIES
    ]


def summary_table(engine) -> Table:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select r.partner_id, r.battery_id, r.name, r.capacity_kwh, r.intervals,"
                " r.estimated_intervals, r.charged_total_kwh, r.discharged_total_kwh,"
                " r.overflow_total_kwh, r.shortfall_total_kwh, r.forfeited_total_kwh, r.level_kwh,"
                " r.active_power_kw, r.reading_at"
                " from analytics_marts.battery_registers r order by r.partner_id, r.battery_id"
            )
        ).all()
    table = Table(title="Virtual batteries so far (kWh)")
    for col in (
        "partner",
        "battery",
        "capacity",
        "intervals",
        "charged",
        "discharged",
        "overflow",
        "shortfall",
        "forfeited",
        "level",
        "power kW",
    ):
        table.add_column(col, justify="left" if col in ("partner", "battery") else "right")
    for r in rows:
        table.add_row(
            r.partner_id,
            f"{r.battery_id}\n[dim]{r.name}[/dim]",
            "unlimited" if r.capacity_kwh == 0 else f"{r.capacity_kwh:g}",
            f"{r.intervals:,}",
            f"{r.charged_total_kwh:.2f}",
            f"{r.discharged_total_kwh:.2f}",
            f"{r.overflow_total_kwh:.2f}",
            f"{r.shortfall_total_kwh:.2f}",
            f"{r.forfeited_total_kwh:.2f}",
            f"{r.level_kwh:.2f}",
            f"{r.active_power_kw:+.2f}",
        )
    return table


def exports_table(engine, outbox) -> Table:
    """What daily_settlement issued: one row per file, newest period first."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select partner_id, format_key, period_label, version, file_name, rows, status"
                " from raw.export_files where period_label = (select max(period_label) from raw.export_files)"
                " order by partner_id, format_key, file_name"
            )
        ).all()
    table = Table(title=f"Files issued to partners (in {outbox})")
    for col in ("partner", "format", "period", "version", "file", "values", "status"):
        table.add_column(col, justify="right" if col in ("version", "values") else "left")
    for r in rows:
        table.add_row(
            r.partner_id,
            r.format_key,
            r.period_label,
            str(r.version),
            r.file_name,
            f"{r.rows:,}",
            r.status,
        )
    return table


REALTIME_PUSH_PERIOD_S = 1.0
DEMO_REALTIME_USER = "demo-realtime"
DEMO_REALTIME_PASSWORD = "sim-realtime-password"


def realtime_credentials() -> dict[str, str]:
    """The receiver's credentials for the detached API: the configured ones, else the demo's."""
    from vbatt.settings import get_settings

    settings = get_settings()
    if settings.realtime_user and settings.realtime_password:
        user, password = settings.realtime_user, settings.realtime_password
    else:
        user, password = DEMO_REALTIME_USER, DEMO_REALTIME_PASSWORD
    return {"VBATT_REALTIME_USER": user, "VBATT_REALTIME_PASSWORD": password}


def start_realtime_pushes(api_url: str, credentials: dict[str, str]) -> None:
    """Leave a simulated smart-me cloud running beside the detached API, registered (as a
    utility would with `vbatt smartme realtime register`) to push every meter's values to
    the API's receiver; `make api-down` stops both."""
    from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig, register_realtime
    from vbatt.settings import get_settings
    from vbatt.simulator import start_detached
    from vbatt.simulator.app import DEMO_API_KEY

    meters = len({b[4] for b in DEMO_BATTERIES})
    try:
        cloud, pid = start_detached(
            get_settings().api_run_dir, meters=meters, push_period_s=REALTIME_PUSH_PERIOD_S
        )
        config = SmartMeConfig(base_url=cloud, auth="api_key", api_key=DEMO_API_KEY)
        with SmartMeClient(config) as client:
            made = register_realtime(
                client,
                f"{api_url}/smartme/realtime",
                username=credentials["VBATT_REALTIME_USER"],
                password=credentials["VBATT_REALTIME_PASSWORD"],
            )
    except Exception as exc:  # noqa: BLE001 - the demo itself has succeeded
        console.print(f"[yellow]realtime pushes not started: {exc}[/yellow]")
        return
    console.log(
        f"simulated smart-me cloud (pid {pid}) pushes every {REALTIME_PUSH_PERIOD_S:g} s to"
        f" {api_url}/smartme/realtime (registration {(made or {}).get('id', '?')});"
        " `make api-down` stops it with the API"
    )


def last_lines(path, count: int) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-count:])


def main() -> int:
    from vbatt.orchestration import airflow_env
    from vbatt.quality.report import overview as quality_overview
    from vbatt.settings import get_settings
    from vbatt.simulator import running
    from vbatt.simulator.app import DEMO_API_KEY
    from vbatt.warehouse import embedded
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.loader import upsert_batteries
    from vbatt.warehouse.migrate import migrate

    logging.basicConfig(level=logging.WARNING)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # the newest complete quarter hour: meter_ingest's data interval ends at its end
    logical = now - timedelta(minutes=now.minute % 15 + 15)

    with console.status("starting the warehouse"):
        url = embedded.warehouse_url()
        engine = get_engine(url)
        migrate(engine)
    console.log(f"warehouse ready ({'external' if get_settings().warehouse_url else 'embedded'})")

    with running(meters=len({b[4] for b in DEMO_BATTERIES}), seed=42) as smartme_url:
        console.log(f"simulated smart-me cloud at {smartme_url}")
        start = demo_start(engine, now.date())
        # backdate: a demo battery a later release adds starts with the others, in days
        # an earlier demo run may have issued (they are issued again, with it)
        upsert_batteries(engine, demo_batteries(start), backdate=True)
        console.log(f"{len(DEMO_BATTERIES)} demo batteries of 2 partners, running since {start}")

        with console.status("setting up Airflow (SQLite metadata in .airflow/)"):
            airflow_env.configure(url, smartme_url, DEMO_API_KEY, retries=0)
            airflow_env.migrate_metadata()
        console.log("Airflow metadata database ready")

        logs = get_settings().root / "build" / "demo"
        for dag_id, when in (
            ("meter_ingest", logical),
            ("battery_ledger", logical),
            ("daily_settlement", logical),
        ):
            log = logs / f"{dag_id}.log"
            log.unlink(missing_ok=True)
            with airflow_env.output_to(log) as terminal:
                console.file = terminal  # the spinner, while the run's output goes to the log
                try:
                    with console.status(f"running {dag_id} (dag.test)"):
                        state = airflow_env.run_dag(dag_id, when)
                finally:
                    console.file = None
            console.log(f"{dag_id}: {state} (its tasks' logs: {log.relative_to(logs.parents[1])})")
            if state != "success":
                console.print(f"[red]{dag_id} ended {state}; the end of {log}:[/red]")
                console.print(last_lines(log, 40), markup=False, highlight=False)
                return 1

    console.print(summary_table(engine))
    console.print(quality_overview(url), highlight=False, markup=False)  # gates, data docs
    console.print(exports_table(engine, get_settings().outbox_dir))
    from vbatt.api.server import demo_handoff, stop_companions

    stop_companions()  # a cloud left pushing by an earlier demo
    credentials = realtime_credentials()
    api_url = demo_handoff(engine, console, env=credentials, restart=True)
    start_realtime_pushes(api_url, credentials)
    console.print(
        "\nNext:\n"
        "  make airflow                      # the Airflow UI (airflow standalone), DAGs from dags/\n"
        "  .venv/bin/vbatt warehouse psql    # query the warehouse (psql comes with it)\n"
        "      e.g. select * from analytics_marts.battery_daily order by battery_id, local_date;\n"
        "  .venv/bin/vbatt export --partner ewa --period YYYY-MM-DD   # files by hand (partners/*.yaml)\n"
        "  .venv/bin/vbatt simulate --readings examples/readings.csv"
        " --batteries examples/batteries.csv --out out/\n"
        "  make api-down warehouse-down      # stop the API, the simulated cloud and the warehouse\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
