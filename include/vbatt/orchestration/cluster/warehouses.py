"""The two warehouses of the cluster test: created alike, filled alike, compared table by table."""

from __future__ import annotations

from datetime import date

from sqlalchemy import create_engine, text

from vbatt.orchestration.cluster.processes import ClusterError

# Columns stamped by the run itself (when, which load): they differ between any two runs,
# and between one load and one load per shard.
VOLATILE = {
    "computed_at",
    "ingested_at",
    "load_id",
    "max_load_id",
    "reading_seq",
    "updated_at",
    "created_at",
}
COMPARED = (
    "raw.batteries",
    "raw.meter_readings",
    "raw.ingest_watermarks",
    "analytics_intermediate.int_meter_readings",
    "analytics_intermediate.int_counter_intervals",
    "analytics_intermediate.int_battery_ledger",
    "analytics_marts.battery_intervals",
    "analytics_marts.battery_daily",
    "analytics_marts.battery_registers",
    "analytics_marts.settlement_periods",
)


def create_databases(server_url: str, names: list[str]) -> dict[str, str]:
    """Fresh databases on the embedded cluster, byte-wise collation like the warehouse."""
    admin = create_engine(server_url.replace("/vbatt?", "/postgres?"), isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"drop database if exists {name} with (force)"))
            conn.execute(
                text(
                    f"create database {name} template template0 encoding 'UTF8'"
                    " locale_provider builtin builtin_locale 'C.UTF-8'"
                )
            )
            urls[name] = server_url.replace("/vbatt?", f"/{name}?")
    admin.dispose()
    return urls


def register_batteries(url: str, meters: int, day: date) -> None:
    from vbatt.simulator.households import meter_id_for
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.loader import upsert_batteries
    from vbatt.warehouse.migrate import migrate

    engine = get_engine(url)
    migrate(engine)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": f"B{i:07d}",
                "name": f"Cluster test {i}",
                "partner_id": f"partner-{i % 3}",
                "customer_id": f"c{i}",
                "meter_id": meter_id_for(i),
                "capacity_kwh": (0.0, 5.0, 10.0)[i % 3],
                "start_date": day,
                "reset_date": None,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 0.0,
            }
            for i in range(1, meters + 1)
        ],
    )


def table_fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """Rows and an md5 over the sorted rows of each compared table (run stamps left out)."""
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in COMPARED:
            schema, name = table.split(".")
            columns = [
                c
                for (c,) in conn.execute(
                    text(
                        "select column_name from information_schema.columns"
                        " where table_schema = :s and table_name = :t order by ordinal_position"
                    ),
                    {"s": schema, "t": name},
                )
                if c not in VOLATILE
            ]
            if not columns:
                raise ClusterError(f"{table} does not exist in {url}")
            row = ", ".join(f'"{c}"' for c in columns)
            count, digest = conn.execute(
                text(
                    f"select count(*), md5(coalesce(string_agg(r, E'\\n' order by r), ''))"
                    f" from (select row({row})::text as r from {table}) t"
                )
            ).one()
            out[table] = (count, digest)
    engine.dispose()
    return out
