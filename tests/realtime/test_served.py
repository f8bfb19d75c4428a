"""The receiver as served: the fast path answers exactly as the FastAPI route, and
`python -m vbatt.api --workers N` (what `vbatt serve --workers N` runs) takes pushes on
every worker, stops cleanly, and exits 3 when it cannot start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.conftest import free_port
from tests.realtime.test_receiver import GUID_METER, _auth, raw  # noqa: F401 - the fixture
from vbatt.api import realtime
from vbatt.api.app import create_app
from vbatt.api.security import HEADERS
from vbatt.ingest.realtime_pb import encode_body
from vbatt.settings import get_settings

T = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _body(i: int) -> bytes:
    at = T + timedelta(seconds=i)
    return encode_body([(GUID_METER, at, [("1-0:1.8.0", 10.0 + i), ("1-0:2.8.0", 2.0)])])


@pytest.fixture
def apps(raw, warehouse_url, monkeypatch):  # noqa: F811
    """The app as served (fast path) and one whose middleware is taken out (the route)."""
    monkeypatch.setenv("VBATT_REALTIME_USER", "rt-user")
    monkeypatch.setenv("VBATT_REALTIME_PASSWORD", "rt-secret")
    get_settings.cache_clear()
    fast = create_app(url=warehouse_url, raw_schema=raw)
    routed = create_app(url=warehouse_url, raw_schema=raw)
    routed.user_middleware = [m for m in routed.user_middleware if m.cls is not realtime.FastPath]
    assert len(routed.user_middleware) == len(fast.user_middleware) - 1
    with TestClient(fast) as f, TestClient(routed) as r:
        yield f, r
    get_settings.cache_clear()


CASES = [
    ("no auth", {}, b"", 401),
    ("wrong password", _auth(password="wrong"), b"", 401),
    ("not basic", {"Authorization": "Bearer rt-secret"}, b"", 401),
    ("garbage", _auth(), b"\xff\x00garbage", 400),
    ("missing field", _auth(), bytes.fromhex("0a00"), 400),  # an item without its fields
    ("empty", _auth(), b"", 200),
    ("push", _auth(), _body(0), 200),
]


@pytest.mark.parametrize(("case", "headers", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_fast_path_answers_as_the_route(apps, case, headers, body, status):
    fast, routed = apps
    a = fast.post(realtime.PATH, content=body, headers=headers)
    b = routed.post(realtime.PATH, content=body, headers=headers)
    assert (a.status_code, a.json()) == (b.status_code, b.json()), case
    assert a.status_code == status
    for name in ("www-authenticate", "content-type", *(h.lower() for h in HEADERS)):
        assert a.headers.get(name) == b.headers.get(name), name
    assert all(a.headers.get(h) == v for h, v in HEADERS.items())  # security headers kept


def test_fast_path_leaves_other_requests_to_the_app(apps):
    fast, _ = apps
    assert fast.get(realtime.PATH).status_code == 405  # the router's answer
    assert fast.get("/api/Health").json() == {}


def test_fast_path_off_without_credentials(raw, warehouse_url, monkeypatch):  # noqa: F811
    monkeypatch.delenv("VBATT_REALTIME_USER", raising=False)
    monkeypatch.delenv("VBATT_REALTIME_PASSWORD", raising=False)
    get_settings.cache_clear()
    with TestClient(create_app(url=warehouse_url, raw_schema=raw)) as c:
        r = c.post(realtime.PATH, content=_body(0), headers=_auth())
    assert r.status_code == 404 and "VBATT_REALTIME_PASSWORD" in r.json()["detail"]
    assert r.headers["x-frame-options"] == HEADERS["X-Frame-Options"]


def _start(warehouse_url: str, raw_schema: str, port: int, workers: int, log) -> subprocess.Popen:
    env = os.environ | {"VBATT_REALTIME_USER": "rt-user", "VBATT_REALTIME_PASSWORD": "rt-secret"}
    return subprocess.Popen(
        [sys.executable, "-m", "vbatt.api", "--port", str(port), "--workers", str(workers)]
        + ["--warehouse-url", warehouse_url, "--raw-schema", raw_schema],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(url: str, proc: subprocess.Popen) -> None:
    for _ in range(150):
        assert proc.poll() is None, "the API exited at start"
        try:
            if httpx.get(f"{url}/api/Health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the API did not answer")


def test_workers_share_the_port_and_keep_every_push(raw, warehouse_url, engine, tmp_path):  # noqa: F811
    port = free_port()
    proc = _start(warehouse_url, raw, port, 2, (tmp_path / "api.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2

        def push(i: int) -> int:  # a connection of its own each: spread over the workers
            with httpx.Client(base_url=url, timeout=30) as c:
                return c.post(realtime.PATH, content=_body(i), headers=_auth()).status_code

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(push, range(200)))
        assert answers == [200] * 200
        with engine.connect() as conn:  # each worker's writer has a session: each took pushes
            names = set(
                conn.execute(text("select application_name from pg_stat_activity")).scalars()
            )
        assert {f"vbatt realtime {w.pid}" for w in workers} <= names
        with engine.connect() as conn:
            stored = conn.execute(
                text(f"select count(*) from {raw}.realtime_values where meter_id = :m"),
                {"m": GUID_METER},
            ).scalar()
        assert stored == 200  # answered 200 = stored, whichever worker took it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_exit_code_3_when_the_port_is_taken(raw, warehouse_url, tmp_path):  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        log = tmp_path / "api.log"
        proc = _start(warehouse_url, raw, port, 2, log.open("w"))
        assert proc.wait(60) == 3
    assert f"cannot listen on 127.0.0.1:{port}" in log.read_text()


def test_vbatt_serve_says_why_and_exits_3(warehouse_url, tmp_path):
    """The CLI's `serve --workers`: a taken port is exit code 3 with the reason."""
    from pathlib import Path

    vbatt = str(Path(sys.executable).with_name("vbatt"))
    env = os.environ | {"WAREHOUSE_URL": warehouse_url, "VBATT_API_RUN_DIR": str(tmp_path)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            [vbatt, "serve", "--workers", "2", "--port", port],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_worker_that_fails_at_start_stops_the_api_with_exit_3(warehouse_url, tmp_path):
    log = tmp_path / "api.log"
    proc = _start(warehouse_url, "not a schema;", free_port(), 2, log.open("w"))
    assert proc.wait(60) == 3
    text_ = log.read_text()
    assert "not a plain lower-case schema name" in text_  # the worker's reason
    assert "a worker of the API ended with code 3" in text_
