"""The simulated cloud pushes to a real `vbatt serve`: registration through the client
functions of the CLI, then duplicates, out-of-order bodies, bursts, bad bodies, wrong
credentials and a receiver that is down and comes back; in the end every acknowledged
value is stored exactly once."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import date, datetime

import httpx
import pytest
from sqlalchemy import text

from vbatt.ingest.smartme import (
    SmartMeClient,
    SmartMeConfig,
    delete_realtime_registration,
    realtime_registrations,
    register_realtime,
)
from vbatt.simulator import get_stats, running, set_faults
from vbatt.warehouse.loader import upsert_batteries
from vbatt.warehouse.migrate import migrate
from vbatt.warehouse.realtime import meter_guid

pytestmark = pytest.mark.slow

USER, PASSWORD = "push-user", secrets.token_hex(8)
METERS = ["SIM-0001", "SIM-0002", "SIM-0003"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, url: str, raw: str, log) -> subprocess.Popen:
    env = os.environ | {"VBATT_REALTIME_USER": USER, "VBATT_REALTIME_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vbatt.api",
            "--port",
            str(port),
            "--warehouse-url",
            url,
            "--raw-schema",
            raw,
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/Health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("vbatt serve did not start")


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def raw(engine):
    schema = f"t_{secrets.token_hex(4)}_raw"
    migrate(engine, schema)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": f"b-{m}",
                "name": m,
                "partner_id": "p",
                "customer_id": "c",
                "meter_id": m,
                "capacity_kwh": 5.0,
                "start_date": date(2026, 1, 1),
                "reset_date": None,
                "end_date": None,
            }
            for m in METERS
        ],
        raw_schema=schema,
    )
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f"drop schema {schema} cascade"))


def test_push_faults_end_with_nothing_lost_and_nothing_doubled(
    engine, warehouse_url, raw, tmp_path
):
    port = _free_port()
    log = (tmp_path / "api.log").open("w")
    server = _serve(port, warehouse_url, raw, log)
    receiver = f"http://127.0.0.1:{port}/smartme/realtime"
    with running(meters=len(METERS)) as cloud:
        set_faults(cloud, push_period_s=0.25)
        client = SmartMeClient(
            SmartMeConfig(
                base_url=cloud, auth="basic", username="demo", password="sim-demo-password"
            )
        )
        made = register_realtime(client, receiver, username=USER, password=PASSWORD)
        assert [r["id"] for r in realtime_registrations(client)] == [made["id"]]
        one = register_realtime(
            client, receiver, username=USER, password=PASSWORD, meter_id=meter_guid("SIM-0002")
        )
        delete_realtime_registration(client, one["id"])  # pushes nothing more
        set_faults(
            cloud,
            rate_duplicate=0.4,
            rate_out_of_order=0.4,
            rate_malformed=0.3,
            hang_rate=0.3,
            push_rate_bad_auth=0.3,
        )
        time.sleep(4)
        server.terminate()
        server.wait(timeout=10)
        time.sleep(2)  # the receiver is down: the cloud keeps the values
        server = _serve(port, warehouse_url, raw, log)
        time.sleep(4)
        set_faults(
            cloud,
            rate_duplicate=0,
            rate_out_of_order=0,
            rate_malformed=0,
            hang_rate=0,
            push_rate_bad_auth=0,
        )
        _wait(lambda: httpx.get(f"{cloud}/_sim/realtime").json()["queued"] == 0, 30, "drained")
        delete_realtime_registration(client, made["id"])
        time.sleep(1)  # a push in flight ends
        acked = httpx.get(f"{cloud}/_sim/realtime").json()["acknowledged"]
        faults = get_stats(cloud)["faults"]
    server.terminate()
    server.wait(timeout=10)
    log.close()

    for kind in (
        "push_duplicate",
        "push_out_of_order",
        "push_bad_body",
        "push_stall",
        "push_bad_auth",
        "push_receiver_down",
        "push_http_401",
        "push_http_400",
    ):
        assert faults.get(kind, 0) > 0, (kind, faults)
    expected = {
        (a["meterId"], datetime.fromisoformat(a["at"]), a["import"], a["export"], a["power"])
        for a in acked
    }
    assert len(expected) == len(acked) > 5 * len(METERS)
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                f"select meter_id, value_at, import_kwh, export_kwh, power_kw"
                f" from {raw}.realtime_values"
            )
        ).all()
    assert len(stored) == len(set(stored))  # nothing doubled
    assert {tuple(r) for r in stored} == expected  # nothing lost, nothing else
