"""An in-memory GX context whose only data docs site is a folder of the build directory.

Ephemeral on purpose: the suites live in ``expectations/`` under version control and
the run records in the warehouse, so GX keeps no state of its own between runs. GX
rebuilds a site from what its (in-memory) stores hold, which is the current run only;
each checkpoint (and each partner's export check) therefore gets a site folder of its
own, holding its latest report, and ``index.html`` above them links them all.
"""

from __future__ import annotations

import html
import logging
import os
import re
import tempfile
from datetime import UTC, datetime
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


def docs_root(docs_dir: Path | None = None) -> Path:
    return Path(docs_dir or get_settings().data_docs_dir)


def site_dir(site: str, docs_dir: Path | None = None) -> Path:
    """The folder of one site: ``after_ledger``, ``before_export/<partner>``..."""
    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in site.split("/")]
    return docs_root(docs_dir).joinpath(*parts)


def gx_context(site: str, docs_dir: Path | None = None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    quiet_gx()
    folder = site_dir(site, docs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.enable_analytics(False)
    for existing in list(context.list_data_docs_sites()):
        context.delete_data_docs_site(existing)  # the default site is a temporary folder
    context.add_data_docs_site(
        DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def publish_index(docs_dir: Path | None = None) -> Path:
    """Write ``index.html`` linking every site's latest report; return its path."""
    root = docs_root(docs_dir)
    sites = sorted(p.parent for p in root.glob("*/**/index.html") if p.parent != root)
    items = "\n".join(
        f'<li><a href="{html.escape(p.relative_to(root).as_posix())}/index.html">'
        f"{html.escape(p.relative_to(root).as_posix())}</a>, "
        f"{datetime.fromtimestamp((p / 'index.html').stat().st_mtime, UTC):%Y-%m-%d %H:%M} UTC</li>"
        for p in sites
    )
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        "<title>vbatt data quality</title></head><body>\n"
        "<h1>Data quality: latest validation reports</h1>\n"
        f"<ul>\n{items}\n</ul>\n</body></html>\n"
    )
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".index.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(tmp, root / "index.html")
    return root / "index.html"
