"""An in-memory GX context whose only data docs site is the project's build folder.

Ephemeral on purpose: the suites live in ``expectations/`` under version control and
the run records in the warehouse, so GX keeps no state of its own between runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vbatt.settings import get_settings

DOCS_SITE = "vbatt"


def quiet_gx() -> None:
    for name in (
        "great_expectations",
        "great_expectations.core",
        "great_expectations.expectations",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


def gx_context(docs_dir: Path | None = None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    quiet_gx()
    docs_dir = Path(docs_dir or get_settings().data_docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for site in list(context.list_data_docs_sites()):
        context.delete_data_docs_site(site)  # the default site is a temporary folder
    context.add_data_docs_site(
        DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def docs_index(docs_dir: Path | None = None) -> Path:
    return Path(docs_dir or get_settings().data_docs_dir) / "index.html"
