"""The embedded cluster: the tuning the ledger was measured with (restart-only settings
such as wal_level included, data checksums off), a start again after a stop in the same
process, and a start that waits for a crashed warehouse's recovery."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from sqlalchemy import create_engine, text

from vbatt.warehouse import embedded


def settings(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: conn.execute(text(f"select current_setting('{name}')")).scalar_one()
                for name in embedded.TUNING
            }
    finally:
        engine.dispose()


def test_a_new_cluster_has_every_setting_and_survives_a_restart(tmp_path):
    data_dir = tmp_path / "pg"
    url = embedded.start(data_dir)
    try:
        applied = settings(url)
        assert applied["wal_level"] == "minimal"  # applied at a start, not by a reload
        assert applied["work_mem"] == embedded.TUNING["work_mem"]
        engine = create_engine(url)
        with engine.connect() as conn:  # PostgreSQL 18's initdb turns them on
            assert conn.execute(text("show data_checksums")).scalar_one() == "off"
        engine.dispose()
        assert embedded.stop(data_dir)
        assert not embedded.is_running(data_dir)
        assert settings(embedded.start(data_dir)) == applied
    finally:
        embedded.stop(data_dir)


def pid_file(data_dir, pid: int, status: str) -> None:
    # postmaster.pid's lines: pid, data dir, start time, port, socket dir, listen address,
    # shared memory key, status
    data_dir.mkdir(exist_ok=True)
    lines = [str(pid), str(data_dir), "0", "5432", str(data_dir), "", "0 0", status]
    (data_dir / "postmaster.pid").write_text("\n".join(lines) + "\n")


def test_a_start_waits_while_the_server_recovers(tmp_path, capsys):
    """pg_ctl gives up after 10 s while a crashed warehouse replays its log; the server
    goes on and is waited for until its pid file says ready."""
    data_dir = tmp_path / "pg"
    pid_file(data_dir, os.getpid(), "starting")
    ready = threading.Timer(1.5, pid_file, (data_dir, os.getpid(), "ready"))
    ready.start()
    embedded.wait_until_ready(data_dir, timeout=30)
    ready.join()
    assert "recovering" in capsys.readouterr().err


def test_a_server_that_dies_while_starting_is_an_error(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    data_dir = tmp_path / "pg"
    pid_file(data_dir, gone.pid, "starting")
    with pytest.raises(embedded.WarehouseError, match="stopped while starting"):
        embedded.wait_until_ready(data_dir, timeout=30)


def test_the_engine_follows_the_warehouse_url_of_the_moment(warehouse_url, monkeypatch):
    """A process whose WAREHOUSE_URL changes gets the engine of the new database, not one
    cached for the URL before (a CLI command after another in the same process)."""
    from sqlalchemy.engine import make_url

    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine

    other = make_url(warehouse_url).set(database="elsewhere").render_as_string(False)
    try:
        for url, database in ((warehouse_url, "vbatt"), (other, "elsewhere")):
            monkeypatch.setenv("WAREHOUSE_URL", url)
            get_settings.cache_clear()
            assert get_engine().url.database == database
        assert get_engine(warehouse_url).url.database == "vbatt"
        assert get_engine(warehouse_url) is get_engine(warehouse_url)  # one per URL
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
