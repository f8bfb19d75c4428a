"""What a load did with every value of a file: used (per register), ignored, quarantined.

Files from other market participants carry more than this project uses: reactive energy,
gas, energy quantities keyed by product codes, monthly sums. Leaving those out is right,
but leaving them out silently makes "nothing in this file is for us" look like "we lost
your data". Every reader therefore fills a :class:`ValueAccount`; the CLI prints it, the
file_drop DAG logs it and ``raw.files``/``raw.loads`` keep it (migration 0011).

Counts are values as the file holds them (one QTY, one CSV cell pair, one SDAT
Observation); ignored and quarantined values are grouped by reason, and a reason names
the register it concerns, so the account reads per register.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from vbatt.readings import Rejected

# ISO instants and spans in a reason make every row its own group; the account groups them.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")
_SPAN = re.compile(r"<instant>(?:/|\.\.)<instant>")


def general_reason(reason: str) -> str:
    """A quarantine reason without its instants: 'only the import register at <instant>'."""
    return _SPAN.sub("<interval>", _INSTANT.sub("<instant>", reason))


@dataclass
class ValueAccount:
    used: Counter[str] = field(default_factory=Counter)  # register -> values
    ignored: Counter[str] = field(default_factory=Counter)  # reason -> values
    quarantined: Counter[str] = field(default_factory=Counter)  # reason -> values
    # of the quarantined values, those an earlier load quarantined already (a file re-sent
    # with other bytes): refused again, but not stored again (loader.quarantine_once)
    already_quarantined: int = 0

    def use(self, register: str, count: int = 1) -> None:
        if count:
            self.used[register] += count

    def ignore(self, reason: str, count: int = 1) -> None:
        if count:
            self.ignored[reason] += count

    def quarantine(self, rejected: Iterable[Rejected]) -> None:
        for row in rejected:
            self.quarantined[general_reason(row.reason)] += 1

    @property
    def values_used(self) -> int:
        return sum(self.used.values())

    @property
    def values_ignored(self) -> int:
        return sum(self.ignored.values())

    @property
    def values_quarantined(self) -> int:
        return sum(self.quarantined.values())

    def headline(self) -> str:
        return (
            f"{self.values_used} values used, {self.values_ignored} ignored,"
            f" {self.values_quarantined} quarantined"
        )

    def nothing_usable(self) -> str:
        """The one line for a file without a single usable value, with the reasons."""
        reasons = [*_grouped(self.ignored), *_grouped(self.quarantined, "quarantined: ")]
        why = "; ".join(reasons) if reasons else "the file holds no values"
        return f"no usable values: {why}"

    def lines(self) -> list[str]:
        """The per-register account, one line per register or reason."""
        out = [f"used {count} values of {register}" for register, count in _sorted(self.used)]
        out += [f"ignored {count} values: {reason}" for reason, count in _sorted(self.ignored)]
        out += [
            f"quarantined {count} values: {reason}" for reason, count in _sorted(self.quarantined)
        ]
        if self.already_quarantined:
            were = "was" if self.already_quarantined == 1 else "were"
            out.append(
                f"{self.already_quarantined} of the quarantined values {were} quarantined"
                " already by an earlier load: not stored again"
            )
        return out

    def as_dict(self) -> dict:
        account = {
            "used": dict(_sorted(self.used)),
            "ignored": dict(_sorted(self.ignored)),
            "quarantined": dict(_sorted(self.quarantined)),
        }
        if self.already_quarantined:  # only then: the usual account keeps its three keys
            account["already_quarantined"] = self.already_quarantined
        return account

    @classmethod
    def from_dict(cls, data: dict) -> ValueAccount:
        return cls(
            Counter(data.get("used", {})),
            Counter(data.get("ignored", {})),
            Counter(data.get("quarantined", {})),
            data.get("already_quarantined", 0),
        )


def _sorted(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _grouped(counter: Counter[str], prefix: str = "") -> list[str]:
    return [f"{prefix}{count} {reason}" for reason, count in _sorted(counter)]
