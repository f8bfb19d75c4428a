"""File names that are safe on every file system and the same on every re-run."""

from __future__ import annotations

import re

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def safe_part(value: str, what: str) -> str:
    """``value`` unchanged if it can be part of a file name, else a clear error.

    We do not silently rewrite ids: two partners whose ids differ only in a slash would
    otherwise get the same file name.
    """
    if not _SAFE.match(value) or ".." in value:
        raise ValueError(
            f"{what} {value!r} cannot be part of a file name: use letters, digits, '.', '_' or '-'"
        )
    return value
