"""Data docs that work offline: GX's CDN links rewritten to copies in the docs folder.

Great Expectations writes its HTML reports with Bootstrap, jQuery, Popper, Font Awesome,
bootstrap-table, bootstrap-datepicker and Vega loaded from public CDNs: opened where there
is no internet (most utility back offices) they show unstyled text and no charts, and
where there is, every page view calls five third parties. The same packages, at the
versions GX names, come from the npm registry at install time (``package.json`` and its
lock, ``npm ci`` in ``make install``, into ``node_modules/``); nothing is fetched at run
time. Each time the docs are published the files a report needs are copied to
``<docs>/assets/`` (so the folder stands alone: zip it, serve it, open it from disk) and
every CDN link in the reports is rewritten to a relative link to its copy.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from functools import cache
from pathlib import Path

from vbatt.settings import get_settings

log = logging.getLogger(__name__)

ASSETS_DIR = "assets"

# The URL as GX writes it -> the file of the npm package (path under node_modules).
CDN = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap/dist/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap/dist/js/bootstrap.min.js"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js/dist/umd/popper.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome/fontawesome-free/css/all.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table/dist/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table/dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (  # noqa: E501
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    # GX names 1.19.0 for the filter-control styles: 1.19.1's are the same rules
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (  # noqa: E501
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (  # noqa: E501
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (  # noqa: E501
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (  # noqa: E501
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (  # noqa: E501
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css"
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# Folders a copied stylesheet loads files from, relative to itself (Font Awesome's fonts).
FOLDERS = ("@fortawesome/fontawesome-free/webfonts",)
# GX's logo in the navigation bar comes from its web-assets bucket: its own package ships
# the same images (render/view/static/images), copied to assets/great_expectations/.
_GX_IMAGES = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/([\w.-]+)(?:\?[^\"']*)?"
)
GX_IMAGES_DIR = "great_expectations/images"
# A link GX writes that is not in CDN: left alone, and named once so it can be added.
_EXTERNAL = re.compile(r"""src=["'](https?://[^"']+)["']|href=["'](https?://[^"']+\.css)["']""")
_LINK = re.compile("|".join(re.escape(url) for url in sorted(CDN, key=len, reverse=True)))


def node_modules() -> Path:
    return get_settings().root / "node_modules"


@cache
def _warn_missing(where: Path) -> None:
    log.warning(
        "data docs: %s is missing the npm packages (run make install): the reports keep their"
        " links to public CDNs and show unstyled text without internet",
        where,
    )


def copy_assets(docs_root: Path, modules: Path | None = None) -> bool:
    """Copy what the reports load into ``<docs_root>/assets``; False if not installed."""
    modules = modules or node_modules()
    missing = [p for p in CDN.values() if not (modules / p).is_file()]
    if missing:
        _warn_missing(modules)
        return False
    target = docs_root / ASSETS_DIR
    for relative in CDN.values():
        _copy_if_changed(modules / relative, target / relative)
    for folder in FOLDERS:
        for source in sorted((modules / folder).iterdir()):
            _copy_if_changed(source, target / folder / source.name)
    for source in sorted(_gx_images().iterdir()):
        if source.is_file():
            _copy_if_changed(source, target / GX_IMAGES_DIR / source.name)
    return True


def _gx_images() -> Path:
    import great_expectations

    return Path(great_expectations.__file__).parent / "render" / "view" / "static" / "images"


def _copy_if_changed(source: Path, target: Path) -> None:
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def localise(page: Path, docs_root: Path) -> list[str]:
    """Rewrite the CDN links of one HTML page to the copies; the external links left."""
    text = page.read_text(encoding="utf-8")
    prefix = os.path.relpath(docs_root / ASSETS_DIR, page.parent).replace(os.sep, "/")
    local = _LINK.sub(lambda m: f"{prefix}/{CDN[m[0]]}", text)
    local = _GX_IMAGES.sub(lambda m: f"{prefix}/{GX_IMAGES_DIR}/{m[1]}", local)
    if local != text:
        page.write_text(local, encoding="utf-8")
    return sorted({a or b for a, b in _EXTERNAL.findall(local)})


def localise_site(docs_root: Path, modules: Path | None = None) -> None:
    """Copies of the assets, and every report below ``docs_root`` linked to them."""
    if not copy_assets(docs_root, modules):
        return
    left: set[str] = set()
    for page in sorted(docs_root.rglob("*.html")):
        if ASSETS_DIR not in page.relative_to(docs_root).parts:
            left.update(localise(page, docs_root))
    if left:
        log.warning("data docs still load from the internet: %s", ", ".join(sorted(left)))
