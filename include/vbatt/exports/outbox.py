"""The outbox: where issued files wait for (or are picked up by) a partner's system.

Files appear atomically (written beside, then renamed), so a partner polling the folder
never reads half a file: ``outbox/<partner>/<format>/<file>``.
"""

from __future__ import annotations

import os
from pathlib import Path


def outbox_path(outbox_dir: Path, partner_id: str, format_key: str, name: str) -> Path:
    return outbox_dir / partner_id / format_key / name


def write_atomically(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that; True if written."""
    if path.is_file() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return True
