"""An in-memory GX context whose only data docs site is a folder of the build directory.

Ephemeral on purpose: the suites live in ``expectations/`` under version control and
the run records in the warehouse, so GX keeps no state of its own between runs. GX
rebuilds a site from what its (in-memory) stores hold, which is the current run only;
each checkpoint (and each partner's export check) therefore gets a site folder of its
own, holding its latest report, and ``index.html`` above them links them all.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
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


DOCS_LOCK = ".publishing.lock"


@contextlib.contextmanager
def docs_lock(docs_dir: Path | None = None):
    """One writer at a time in the docs folder, across processes (not reentrant).

    GX's site builder deletes the pages of a site that its in-memory store does not hold,
    and ``publish_index`` reads and rewrites every page below the root: two checks at once
    (an export's formats are issued in forked processes, each checking the same partner's
    site) would delete or half-write a page the other is reading. Hold it around the GX run
    that writes a site; ``publish_index`` takes it itself."""
    root = docs_root(docs_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / DOCS_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


SUMMARY = "summary.json"  # per site: what its latest run passed and failed


def write_summary(site: str, result, docs_dir: Path | None = None) -> None:
    """Record a run's outcome beside its report, for the index page."""
    failed = [
        {
            "suite": f.suite,
            "expectation": f.expectation,
            "level": f.level,
            "rows": f.unexpected_count,
            "description": f.description,
        }
        for f in result.failures
    ]
    record = {
        "checkpoint": result.checkpoint,
        "scope": result.scope,
        "outcome": result.outcome,
        "expectations": result.expectations,
        "passed": max(result.expectations - len(failed), 0),
        "failed": failed,
        "quarantined": result.quarantined,
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    folder = site_dir(site, docs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(folder / SUMMARY, json.dumps(record, indent=1, sort_keys=True))


_BADGE = {"passed": "success", "warned": "warning", "blocked": "danger"}


def _failure_row(f: dict) -> str:
    badge = "danger" if f["level"] == "block" else "warning"
    count = "" if f["rows"] is None else f"{f['rows']:,}"
    return (
        f'<tr class="failed"><td><span class="badge badge-{badge}">{html.escape(f["level"])}'
        f"</span></td><td>{html.escape(f['suite'])}.{html.escape(f['expectation'])}</td>"
        f"<td>{count}</td><td>{html.escape(f['description'] or '')}</td></tr>"
    )


def _site_card(root: Path, folder: Path) -> str:
    name = folder.relative_to(root).as_posix()
    link = f'<a href="{html.escape(name)}/index.html">{html.escape(name)}</a>'
    summary_file = folder / SUMMARY
    if not summary_file.is_file():
        when = datetime.fromtimestamp((folder / "index.html").stat().st_mtime, UTC)
        return (
            f'<li class="list-group-item" data-site="{html.escape(name)}">{link}'
            f" <small>{when:%Y-%m-%d %H:%M} UTC</small></li>"
        )
    s = json.loads(summary_file.read_text(encoding="utf-8"))
    rows = "".join(_failure_row(f) for f in s["failed"])
    table = (
        '<table class="table table-sm mt-2"><thead><tr><th>level</th><th>failed expectation</th>'
        f"<th>rows</th><th>what it checks</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    held = f", {s['quarantined']:,} readings quarantined" if s.get("quarantined") else ""
    return (
        f'<li class="list-group-item" data-site="{html.escape(name)}"'
        f' data-outcome="{html.escape(s["outcome"])}">'
        f'<span class="badge badge-{_BADGE.get(s["outcome"], "secondary")} mr-2">'
        f"{html.escape(s['outcome'])}</span>{link} "
        f'<span class="counts">{s["passed"]} passed, {len(s["failed"])} failed'
        f" of {s['expectations']} expectations{held}</span>"
        f' <small class="text-muted">{html.escape(s["at"])}</small>{table}</li>'
    )


def publish_index(docs_dir: Path | None = None) -> Path:
    """Write ``index.html``: per checkpoint (and partner) what its latest run passed and
    failed, linking its report; CDN links of every report rewritten to local copies."""
    from vbatt.quality.assets import localise_site

    root = docs_root(docs_dir)
    with docs_lock(root):
        _write_atomically(root / "index.html", _index_page(root))
        localise_site(root)
    return root / "index.html"


def _index_page(root: Path) -> str:
    from vbatt.quality.assets import ASSETS_DIR, CDN

    sites = sorted(
        p.parent
        for p in root.glob("*/**/index.html")
        if p.parent != root and ASSETS_DIR not in p.relative_to(root).parts
    )
    items = "\n".join(_site_card(root, p) for p in sites)
    bootstrap = next(u for u in CDN if u.endswith("bootstrap/4.3.1/css/bootstrap.min.css"))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f'<link rel="stylesheet" href="{bootstrap}">'
        "<title>vbatt data quality</title></head><body>\n"
        '<main class="container my-4">\n'
        "<h1>Data quality: latest validation reports</h1>\n"
        '<p class="lead">Per checkpoint (and partner) the outcome of its latest run: what'
        " passed and what failed; the link opens the full report.</p>\n"
        f'<ul class="list-group">\n{items}\n</ul>\n</main></body></html>\n'
    )


def _write_atomically(path: Path, content: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(tmp, path)
