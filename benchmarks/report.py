"""The results file every benchmark writes: when, on what, the summary and the steps."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console


def write_report(out: Path, summary: dict, console: Console, **sections) -> None:
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "summary": summary,
        **sections,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print_json(json.dumps(summary))
    console.log(f"written to {out}")
