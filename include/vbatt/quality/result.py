"""What a checkpoint run found, in a form people read and programs test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class Failure:
    suite: str
    expectation: str  # the expectation's name (meta.name in the suite JSON)
    level: str  # warn | block
    unexpected_count: int | None  # offending rows (or values), when GX counts them
    examples: list[dict]  # a few offending rows, as GX returned them
    description: str = ""

    def line(self) -> str:
        count = "" if self.unexpected_count is None else f": {self.unexpected_count:,} rows"
        shown = "; ".join(
            json.dumps(e, default=str, sort_keys=True) for e in self.examples[:EXAMPLES_SHOWN]
        )
        example = f", e.g. {shown}" if shown else ""
        return f"{self.level.upper():5} {self.suite}.{self.expectation}{count}{example}"


@dataclass
class QualityResult:
    checkpoint: str
    scope: str = ""  # e.g. the partner and period of an export check
    expectations: int = 0  # how many were evaluated
    failures: list[Failure] = field(default_factory=list)
    quarantined: int = 0  # readings newly held back by this run
    data_docs: Path | None = None
    run_id: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return any(f.level == "block" for f in self.failures)

    @property
    def ok(self) -> bool:
        """Nothing blocking: warnings let the data through (they are recorded)."""
        return not self.blocked

    @property
    def outcome(self) -> str:
        return "blocked" if self.blocked else "warned" if self.failures else "passed"

    def as_dict(self) -> dict:
        """A small record for an Airflow task's return value (XCom)."""
        return {
            "checkpoint": self.checkpoint,
            "outcome": self.outcome,
            "failed": [f"{f.level}:{f.suite}.{f.expectation}" for f in self.failures],
            "quarantined": self.quarantined,
            "run_id": self.run_id,
            "data_docs": str(self.data_docs or ""),
        }

    @property
    def summary(self) -> str:
        scope = f" [{self.scope}]" if self.scope else ""
        head = (
            f"quality {self.checkpoint}{scope}: {self.outcome}"
            f" ({len(self.failures)} of {self.expectations} expectations failed"
            + (f", {self.quarantined:,} readings quarantined" if self.quarantined else "")
            + ")"
        )
        lines = [head, *(f"  {f.line()}" for f in self.failures)]
        lines += [f"  note: {n}" for n in self.notes]
        if self.data_docs:
            lines.append(f"  data docs: {self.data_docs}")
        return "\n".join(lines)
