"""Drive the real pipeline (raw layer, loader, dbt) in an isolated schema for tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from vbatt.ledger.dbt_runner import InProcessDbt
from vbatt.ledger.simulate import drop_schemas
from vbatt.readings import Reading
from vbatt.warehouse.loader import load_readings, upsert_batteries
from vbatt.warehouse.migrate import migrate


class Pipeline:
    def __init__(self, engine: Engine, url: str, schema: str, target_dir: Path):
        self.engine, self.url, self.schema, self.target_dir = engine, url, schema, target_dir
        self.raw = f"{schema}_raw"
        migrate(engine, self.raw)
        # dbt in this process, the project parsed once per pipeline: a subprocess per run
        # cost seconds of start-up each, most of the suite's time
        self._dbt = InProcessDbt(url=url, schema=schema, raw_schema=self.raw, target_dir=target_dir)

    def load(self, readings: list[Reading], source: str = "test") -> None:
        load_readings(self.engine, readings, source=source, raw_schema=self.raw)

    def batteries(self, rows: list[dict]) -> None:
        upsert_batteries(self.engine, rows, raw_schema=self.raw)

    def dbt(self, *args: str) -> None:
        self._dbt.run(list(args))

    def run(self, full_refresh: bool = False) -> None:
        self.dbt("run", *(["--full-refresh"] if full_refresh else []))

    def rows(self, relation: str, order_by: str, columns: str = "*") -> list[dict]:
        schema = {
            "int": f"{self.schema}_intermediate",
            "battery": f"{self.schema}_marts",
            "settlement": f"{self.schema}_marts",
        }[relation.split("_")[0]]
        with self.engine.connect() as conn:
            result = conn.execute(
                text(f"select {columns} from {schema}.{relation} order by {order_by}")
            )
            return [dict(r._mapping) for r in result]

    def drop(self) -> None:
        drop_schemas(self.engine, self.schema)
