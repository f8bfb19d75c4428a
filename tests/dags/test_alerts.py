"""Failure alerts reach a real HTTP endpoint: a task that fails under dag.test() posts its
failure to the webhook; the settlement's deadline callback posts a deadline message."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


@pytest.fixture
def webhook(monkeypatch):
    """A local HTTP server that records every JSON body POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from vbatt.settings import get_settings

    monkeypatch.setenv("VBATT_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    get_settings.cache_clear()
    yield received
    server.shutdown()
    get_settings.cache_clear()


def test_every_task_alerts_when_it_fails(dags):
    from vbatt.orchestration.alerts import on_task_failure

    for dag in dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert on_task_failure in callbacks, f"{dag.dag_id}.{task.task_id}"


def test_a_failed_task_posts_its_failure_to_the_webhook(webhook):
    """The callback with the context Airflow hands it (the parts it reads); a DAG file of
    its own would be needed to fail a task under dag.test(), which parses files only."""
    from types import SimpleNamespace

    from vbatt.orchestration.alerts import on_task_failure

    ti = SimpleNamespace(
        dag_id="meter_ingest",
        task_id="fetch_shard",
        map_index=3,
        run_id="scheduled__2026-06-01T10:00:00+00:00",
        try_number=4,
        hostname="worker-2",
        log_url="http://airflow:8080/dags/meter_ingest/runs/x/tasks/fetch_shard",
    )
    on_task_failure(
        {
            "ti": ti,
            "logical_date": datetime(2026, 6, 1, 10, tzinfo=UTC),
            "exception": ValueError("2 meters failed"),
        }
    )
    assert len(webhook) == 1
    message = webhook[0]
    assert message["event"] == "task_failed"
    assert (message["dag_id"], message["task_id"], message["map_index"]) == (
        "meter_ingest",
        "fetch_shard",
        3,
    )
    assert message["error"] == "ValueError: 2 meters failed"
    assert message["logical_date"] == "2026-06-01T10:00:00+00:00"
    assert message["text"].startswith("vbatt: meter_ingest.fetch_shard[3] failed")


def test_the_settlement_deadline_callback_posts_to_the_webhook(webhook):
    from vbatt.orchestration.alerts import settlement_deadline_missed

    context = {"dag_run": {"dag_id": "daily_settlement", "run_id": "scheduled__x"}}
    asyncio.run(settlement_deadline_missed(context=context))
    assert webhook == [
        {
            "event": "deadline_missed",
            "dag_id": "daily_settlement",
            "run_id": "scheduled__x",
            "logical_date": None,
            "deadline": "daily_settlement not done 180 minutes after it was queued",
            "text": "vbatt: daily_settlement not done 180 minutes after it was queued"
            " (run scheduled__x)",
        }
    ]


def test_an_unreachable_webhook_never_fails_the_caller(monkeypatch):
    from vbatt.orchestration import alerts
    from vbatt.settings import get_settings

    monkeypatch.setenv("VBATT_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens")
    get_settings.cache_clear()
    try:
        assert alerts.deliver({"text": "x", "event": "task_failed"}) == []
    finally:
        get_settings.cache_clear()


def test_daily_settlement_has_a_deadline_alert(dags):
    from datetime import timedelta

    deadlines = dags["daily_settlement"].deadline
    assert deadlines, "daily_settlement has a DeadlineAlert (Airflow 3's successor of SLAs)"
    alert = deadlines[0] if isinstance(deadlines, list) else deadlines
    assert alert.interval == timedelta(minutes=180)
    assert "settlement_deadline_missed" in str(alert.callback.path)
