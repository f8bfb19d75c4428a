"""What every vbatt DAG shares: owner, retries, tags, and the Assets that link them."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset

from vbatt.orchestration.alerts import on_task_failure
from vbatt.settings import get_settings

# The raw layer changed: battery_ledger runs after every ingest that wrote to it, and after
# battery terms were recorded (the battery_terms DAG).
RAW_METER_DATA = Asset("postgres://warehouse/raw/meter_readings", group="vbatt")
LEDGER = Asset("postgres://warehouse/analytics_marts/battery_intervals", group="vbatt")

START_DATE = datetime(2025, 1, 1)
DEFAULT_ARGS = {
    "owner": "vbatt",
    "retries": get_settings().task_retries,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    # a webhook and/or mail when a task has failed for good (VBATT_ALERT_*, docs/operations.md)
    "on_failure_callback": on_task_failure,
}
TAGS = ["vbatt"]
