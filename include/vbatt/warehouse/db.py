"""SQLAlchemy engines for the warehouse (psycopg2, as SQLAlchemy 2.1 defaults to psycopg 3)."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine, create_engine

from vbatt.warehouse.embedded import normalise_url, warehouse_url


@cache
def get_engine(url: str | None = None) -> Engine:
    return create_engine(normalise_url(url or warehouse_url()), pool_pre_ping=True)
