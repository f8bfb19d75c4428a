"""The suites in ``expectations/``, with their placeholders filled in.

A suite's SQL names schemas and bounds by placeholder (``{raw}``, ``{marts}``,
``{max_household_kw}``, ...) so the same JSON serves production, ``vbatt simulate`` and
the tests' isolated schemas; ``{batch}`` is left for GX, which puts the suite's batch
there. Bounds come from one place each: settings (household power, estimated share), the
dbt vars (tolerance, interval length) or the suite's own ``meta.params``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import yaml

from vbatt.settings import get_settings

SUITES = ("raw_readings", "meter_intervals", "ledger", "exports")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def dbt_vars() -> dict:
    project = get_settings().dbt_project_dir / "dbt_project.yml"
    return yaml.safe_load(project.read_text())["vars"]


def schema_names(schema: str, raw_schema: str) -> dict[str, str]:
    return {
        "raw": raw_schema,
        "staging": f"{schema}_staging",
        "intermediate": f"{schema}_intermediate",
        "marts": f"{schema}_marts",
    }


def parameters(suite: dict) -> dict:
    """The bounds a suite may use, by name (also GX's ``$PARAMETER`` values)."""
    settings = get_settings()
    found = {
        "max_household_kw": settings.max_household_kw,
        "max_estimated_share": settings.max_estimated_share,
        "invariant_tolerance_kwh": float(dbt_vars()["invariant_tolerance_kwh"]),
        "interval_minutes": int(dbt_vars()["interval_minutes"]),
    }
    found.update(suite.get("meta", {}).get("params", {}))
    return found


def fill(sql: str, values: dict) -> str:
    """Replace every placeholder but ``{batch}``; an unknown one is a mistake in the suite."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "batch":
            return match.group(0)
        if name not in values:
            raise KeyError(f"unknown placeholder {{{name}}} in a suite query")
        return str(values[name])

    return _PLACEHOLDER.sub(value, sql)


def load_suite(name: str, values: dict | None = None, directory: Path | None = None) -> dict:
    """The suite as a GX suite dict, its SQL filled with ``values`` and its parameters."""
    path = (directory or get_settings().expectations_dir) / f"{name}.json"
    suite = json.loads(path.read_text())
    values = {**parameters(suite), **(values or {})}
    for expectation in suite["expectations"]:
        query = expectation["kwargs"].get("unexpected_rows_query")
        if query:
            expectation["kwargs"]["unexpected_rows_query"] = fill(query, values)
    if "batch_query" in suite.get("meta", {}):
        suite["meta"]["batch_query"] = fill(suite["meta"]["batch_query"], values)
    return suite


def expectation_names(name: str, directory: Path | None = None) -> list[str]:
    path = (directory or get_settings().expectations_dir) / f"{name}.json"
    return [e["meta"]["name"] for e in json.loads(path.read_text())["expectations"]]
