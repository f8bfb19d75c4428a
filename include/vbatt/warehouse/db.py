"""SQLAlchemy engines for the warehouse (psycopg2, as SQLAlchemy 2.1 defaults to psycopg 3)."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine, create_engine

from vbatt.warehouse.embedded import normalise_url, warehouse_url

_ENGINES: list[Engine] = []


def get_engine(url: str | None = None) -> Engine:
    """The engine of ``url``, else of the warehouse the settings name now; one engine per
    URL. The URL is resolved on every call and the engine cached by it, so a process whose
    WAREHOUSE_URL changed (a test, a task) is never handed another database's engine."""
    return _engine(normalise_url(url or warehouse_url()))


@cache
def _engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    _ENGINES.append(engine)
    return engine


def forget_inherited_connections(*engines: Engine) -> None:
    """In a forked child: drop the parent's pooled connections without closing them
    (closing would end the parent's sessions); the child then opens its own."""
    for engine in (*_ENGINES, *engines):
        engine.dispose(close=False)
