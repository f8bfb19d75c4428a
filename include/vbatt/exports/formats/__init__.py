"""One module per file format; each exposes ``render(batch, options, ctx) -> list[ExportFile]``
and refuses a partner's bad options there, before anything is written or recorded."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

FORMAT_NAMES = ("csv", "mscons", "ise", "sdat")


def renderer(name: str) -> ModuleType:
    if name not in FORMAT_NAMES:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMAT_NAMES)}")
    return import_module(f"vbatt.exports.formats.{name}")
