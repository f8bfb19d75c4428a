"""A new embedded cluster runs with the tuning the ledger was measured with, restart-only
settings (wal_level) included, and comes up again in the same process after a stop."""

from __future__ import annotations

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
        assert embedded.stop(data_dir)
        assert not embedded.is_running(data_dir)
        assert settings(embedded.start(data_dir)) == applied
    finally:
        embedded.stop(data_dir)
