"""The GX context and data source the gates build, without a warehouse."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, make_url

from vbatt.quality.context import DOCS_SITE, gx_context
from vbatt.quality.gates import warehouse_source


def test_only_the_project_docs_site(tmp_path):
    context = gx_context("before_export/P 1", tmp_path / "docs")
    sites = context.list_data_docs_sites()
    assert list(sites) == [DOCS_SITE]
    folder = (tmp_path / "docs" / "before_export" / "P_1").resolve()
    assert sites[DOCS_SITE]["store_backend"]["base_directory"] == str(folder)


class _Sources:
    def __init__(self):
        self.calls = []

    def add_postgres(self, name, connection_string):
        self.calls.append(("postgres", connection_string))

    def add_sql(self, name, connection_string):
        self.calls.append(("sql", connection_string))


class _Context:
    def __init__(self):
        self.data_sources = _Sources()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("postgresql+psycopg2://vbatt:pa%24%24@db.example:5432/vbatt", "postgres"),
        ("postgresql+psycopg2://postgres@/vbatt?host=/tmp/socket-dir", "sql"),
    ],
)
def test_postgres_datasource_unless_a_socket(url, kind):
    """GX's PostgresDatasource wants a host; the embedded warehouse has a socket."""
    context = _Context()
    warehouse_source(context, create_engine(url))
    [(called, passed)] = context.data_sources.calls
    assert called == kind
    assert make_url(passed) == make_url(url)  # the password is not masked


def test_gx_accepts_an_external_warehouse_url(tmp_path):
    """The URL passes GX's validation (the password keeps its escaped '$'); GX then
    tests the connection, which fails here as nothing listens."""
    from great_expectations.datasource.fluent.interfaces import TestConnectionError

    engine = create_engine("postgresql+psycopg2://vbatt:pa%24%24@127.0.0.1:1/vbatt")
    with pytest.raises(TestConnectionError, match="127.0.0.1"):
        warehouse_source(gx_context("after_ledger", tmp_path / "docs"), engine)
