"""The outbox: where issued files wait for (or are picked up by) a partner's system.

Files appear atomically (written beside, then renamed), so a partner polling the folder
never reads half a file: ``outbox/<partner>/<format>/<file>``. They are not fsynced one
by one (10,000 SDAT-CH documents a day would spend more time in fsync than in rendering):
after a crash, the next run of the period compares each file with the sha256 in the
export ledger and rewrites any that did not survive.
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
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return True
