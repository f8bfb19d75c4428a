"""Switchable faults of the simulated cloud, and the dice that decide when they strike.

Random faults are drawn from a hash of (seed, path, per-path request number, kind), so a
test that replays the same request sequence sees the same faults. After
``max_consecutive_faults`` faulty answers on a path the next answer there is clean: faults
are transient by construction, so a client that retries always gets complete data.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vbatt.simulator.households import meter_index, uniform

_KIND_KEYS = {
    "429": 1,
    "500": 2,
    "malformed": 3,
    "hang": 4,
    "missing": 5,
    "duplicate": 6,
    "out_of_order": 7,
    "bad_auth": 8,
}


class Faults(BaseModel):
    """Fault switches; rates are probabilities per request (or per value for value faults)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: int = Field(0, ge=0, description="added to every API answer")
    rate_429: float = Field(0.0, ge=0, le=1)
    retry_after_s: int = Field(1, ge=0, description="Retry-After sent with a 429")
    retry_after_http_date: bool = Field(False, description="send Retry-After as an HTTP date")
    rate_500: float = Field(0.0, ge=0, le=1)
    rate_malformed: float = Field(0.0, ge=0, le=1, description="200 with broken JSON")
    hang_rate: float = Field(0.0, ge=0, le=1, description="answer only after hang_ms")
    hang_ms: int = Field(3000, ge=0)
    rate_missing: float = Field(0.0, ge=0, le=1, description="per value: absent/null/garbage")
    rate_duplicate: float = Field(0.0, ge=0, le=1, description="per value: sent twice")
    rate_out_of_order: float = Field(0.0, ge=0, le=1, description="per list: shuffled")
    counter_drop: dict[str, datetime] = Field(
        default_factory=dict, description="meter id -> instant of a meter exchange"
    )
    max_consecutive_faults: int = Field(2, ge=0)
    import_only: list[str] = Field(
        default_factory=list, description="meter ids that report no export register"
    )
    # realtime pushes (simulator/realtime.py); the rates above act on pushes too
    push_period_s: float = Field(1.0, gt=0, description="seconds between realtime pushes")
    push_rate_bad_auth: float = Field(
        0.0, ge=0, le=1, description="per push: wrong password (refused, sent again)"
    )

    @field_validator("counter_drop")
    @classmethod
    def _check_drop(cls, value: dict[str, datetime]) -> dict[str, datetime]:
        for meter_id, ts in value.items():
            meter_index(meter_id)
            if ts.tzinfo is None:
                raise ValueError(f"counter_drop instant for {meter_id} needs a UTC offset")
        return value


def parse_counter_drop(spec: str) -> tuple[str, datetime]:
    """``SIM-0002@2025-06-10T12:00:00Z`` -> (meter id, aware instant)."""
    meter_id, sep, when = spec.partition("@")
    if not sep:
        raise ValueError(f"--counter-drop wants METER@ISO-INSTANT, got {spec!r}")
    meter_index(meter_id)
    ts = datetime.fromisoformat(when)
    if ts.tzinfo is None:
        raise ValueError(f"--counter-drop instant needs a UTC offset: {spec!r}")
    return meter_id, ts


class Dice:
    """Deterministic per-path fault decisions plus counters for ``/_sim/stats``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: Counter[str] = Counter()
            self.consecutive: Counter[str] = Counter()
            self.injected: Counter[str] = Counter()

    def next_request(self, path: str) -> int:
        with self.lock:
            self.requests[path] += 1
            return self.requests[path]

    def may_fault(self, path: str, limit: int) -> bool:
        with self.lock:
            return self.consecutive[path] < limit

    def outcome(self, path: str, faulty: bool, kind: str = "") -> None:
        with self.lock:
            if faulty:
                self.consecutive[path] += 1
                self.injected[kind] += 1
            else:
                self.consecutive[path] = 0

    def count(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.injected[kind] += n

    def roll(self, path: str, n: int, kind: str, item: int = 0) -> float:
        return float(uniform(self.seed, hash_path(path), n, _KIND_KEYS[kind], item))

    def stats(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {"requests": dict(self.requests), "faults": dict(self.injected)}


def hash_path(path: str) -> int:
    """Stable (not per-process salted like ``hash``) 63-bit key of a path."""
    h = 1469598103934665603
    for byte in path.encode():
        h = ((h ^ byte) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h
