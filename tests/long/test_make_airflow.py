"""`make airflow` as a user runs it: from a plain shell, virtualenv not activated.

Airflow's `standalone` starts its api-server, scheduler and DAG processor as `airflow ...`
from PATH; the UI must come up anyway, and listen on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.long


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_airflow_serves_the_ui_on_loopback(tmp_path):
    port = _free_port()
    env = {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PATH": PLAIN_PATH,  # no .venv/bin: the user did not activate the virtualenv
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "VBATT_WAREHOUSE_DIR": str(tmp_path / "warehouse"),
        "AIRFLOW__API__PORT": str(port),
    }
    log = (tmp_path / "make-airflow.log").open("w")
    proc = subprocess.Popen(
        ["make", "airflow"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)
                if status.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        output = (tmp_path / "make-airflow.log").read_text()
        assert "FileNotFoundError" not in output, output[-3000:]
        assert status is not None and status.status_code == 200, output[-3000:]
        health = status.json()
        assert health["scheduler"]["status"] == "healthy" or health["metadatabase"], health
        listening = {
            c.laddr.ip
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}, listening
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(
            [str(ROOT / ".venv/bin/vbatt"), "warehouse", "down"],
            env={**env, "PATH": PLAIN_PATH},
            cwd=ROOT,
            capture_output=True,
        )
