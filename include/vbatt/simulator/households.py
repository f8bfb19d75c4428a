"""Deterministic PV households: the "truth" the simulated smart-me cloud serves.

Every number is a pure function of (seed, meter, instant): a counter-based hash replaces a
stateful random generator, so the server, a test and a demo compute the same register value
for the same instant without sharing state or replaying history. Energy is integrated per
UTC quarter hour from ``EPOCH`` and netted inside the quarter hour (what a bidirectional
meter does), so the two cumulative registers only ever grow, except at a simulated meter
exchange ("counter drop"), which is part of the truth because the warehouse must cope with it.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
QUARTER_S = 900
_QH_PER_DAY = 96
_QH_PER_YEAR = 366 * _QH_PER_DAY  # growth step of the cached integrals

LATITUDE_DEG = 47.4  # Swiss plateau
LONGITUDE_DEG = 8.5
EXCHANGE_START_KWH = (0.1, 0.0)  # registers of the new meter right after an exchange

_METER_RE = re.compile(r"^SIM-(\d{4,})$")
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def meter_id_for(index: int) -> str:
    return f"SIM-{index:04d}"


def meter_index(meter_id: str) -> int:
    """Index encoded in a simulated meter id; ValueError for anything else."""
    m = _METER_RE.match(meter_id)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"not a simulated meter id: {meter_id!r}")
    return int(m.group(1))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a good bijective hash, vectorised, wrapping on purpose."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def uniform(seed: int, *keys: int | np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers addressed by (seed, keys...): no generator state to carry."""
    h = _mix(np.asarray(seed & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64))
    for key in keys:
        k = np.asarray(key).astype(np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            h = _mix(h ^ (k * np.uint64(0xD6E8FEB86659FD93)))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _scalar(seed: int, *keys: int) -> float:
    return float(uniform(seed, *keys))


@dataclass(frozen=True)
class Household:
    """Static traits of one simulated customer; drawn once from (seed, index)."""

    index: int
    meter_id: str
    serial: int
    name: str
    kwp: float  # PV peak power
    base_kw: float
    morning_kw: float
    evening_kw: float
    start_import_kwh: float  # registers at EPOCH
    start_export_kwh: float


_STREETS = ("Bahnhofstrasse", "Dorfstrasse", "Hauptstrasse", "Sonnenweg", "Kirchgasse")


def household(seed: int, index: int) -> Household:
    u = [_scalar(seed, index, 1000 + i) for i in range(8)]
    street = _STREETS[int(u[7] * len(_STREETS))]
    return Household(
        index=index,
        meter_id=meter_id_for(index),
        serial=17_000_000 + (seed % 1000) * 1000 + index,
        name=f"Household {index} ({street} {1 + int(u[6] * 80)})",
        kwp=round(4.0 + 8.0 * u[0], 1),
        base_kw=0.15 + 0.25 * u[1],
        morning_kw=0.4 + 0.9 * u[2],
        evening_kw=0.8 + 1.4 * u[3],
        start_import_kwh=round(1000.0 + 9000.0 * u[4], 3),
        start_export_kwh=round(500.0 + 4000.0 * u[5], 3),
    )


def quarter_hour_energy(seed: int, hh: Household, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PV yield and household load in kWh for quarter hours ``k`` (counted from EPOCH).

    Physics is deliberately simple but has the shapes that matter for a virtual battery:
    zero PV at night, a bell by sun elevation that is taller and wider in summer, weather
    shared by the whole neighbourhood per day, and load peaks in the morning and evening.
    """
    k = np.asarray(k, dtype=np.int64)
    day = k // _QH_PER_DAY
    hour_utc = (k % _QH_PER_DAY + 0.5) / 4.0
    epoch_doy = EPOCH.timetuple().tm_yday
    doy = (epoch_doy - 1 + day) % 365.25 + 1  # good enough for a demo calendar
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour_angle = np.radians(15.0 * (hour_utc + LONGITUDE_DEG / 15.0 - 12.0))
    lat = math.radians(LATITUDE_DEG)
    sin_el = math.sin(lat) * np.sin(decl) + math.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    clear_sky = np.clip(sin_el, 0.0, None) ** 1.2

    winter = 0.5 + 0.5 * np.cos(2 * np.pi * (doy - 15) / 365.0)  # 1 in January, 0 in July
    weather = uniform(seed, day, 1)  # same sky for every household of this seed
    sunny = 0.1 + 0.9 * weather ** (0.6 + 0.8 * winter)
    flicker = 1.0 + 0.3 * (uniform(seed, day * _QH_PER_DAY + k % _QH_PER_DAY, 2) - 0.5)
    local_site = 0.92 + 0.08 * uniform(seed, hh.index, day, 3)
    pv_kw = hh.kwp * 0.85 * clear_sky * np.clip(sunny * flicker * local_site, 0.0, 1.0)

    hour_local = (hour_utc + 1.0) % 24.0
    morning = hh.morning_kw * np.exp(-0.5 * ((hour_local - 7.0) / 1.0) ** 2)
    evening = hh.evening_kw * np.exp(-0.5 * ((hour_local - 19.0) / 1.6) ** 2)
    noise = 0.7 + 0.6 * uniform(seed, hh.index, k, 4)
    load_kw = (hh.base_kw + morning + evening) * (0.85 + 0.3 * winter) * noise
    return pv_kw * 0.25, load_kw * 0.25


class _Integral:
    """Cumulative import/export at every quarter-hour boundary, grown on demand."""

    def __init__(self, seed: int, hh: Household) -> None:
        self.seed, self.hh = seed, hh
        self.lock = threading.Lock()
        self.imp = np.array([hh.start_import_kwh])
        self.exp = np.array([hh.start_export_kwh])
        self.d_imp = np.zeros(0)
        self.d_exp = np.zeros(0)

    def ensure(self, k: int) -> None:
        with self.lock:
            have = len(self.d_imp)
            if k < have:
                return
            upto = (k // _QH_PER_YEAR + 1) * _QH_PER_YEAR
            pv, load = quarter_hour_energy(self.seed, self.hh, np.arange(have, upto))
            d_imp, d_exp = np.maximum(load - pv, 0.0), np.maximum(pv - load, 0.0)
            self.imp = np.concatenate([self.imp, self.imp[-1] + np.cumsum(d_imp)])
            self.exp = np.concatenate([self.exp, self.exp[-1] + np.cumsum(d_exp)])
            self.d_imp = np.concatenate([self.d_imp, d_imp])
            self.d_exp = np.concatenate([self.d_exp, d_exp])

    def at(self, ts: datetime) -> tuple[float, float]:
        seconds = (ts - EPOCH).total_seconds()
        if seconds < 0:
            raise ValueError(f"{ts.isoformat()} is before the simulation epoch {EPOCH:%Y-%m-%d}")
        k, rest = divmod(seconds, QUARTER_S)
        k = int(k)
        self.ensure(k)
        frac = rest / QUARTER_S
        return (
            float(self.imp[k] + frac * self.d_imp[k]),
            float(self.exp[k] + frac * self.d_exp[k]),
        )


@lru_cache(maxsize=256)
def _integral(seed: int, index: int) -> _Integral:
    return _Integral(seed, household(seed, index))


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC)


def ground_truth(
    meter_id: str,
    ts: datetime,
    *,
    seed: int = 42,
    counter_drops: Mapping[str, datetime] | None = None,
) -> tuple[float, float]:
    """Cumulative (import_kwh, export_kwh) of ``meter_id`` at ``ts``, rounded to Wh.

    ``counter_drops`` maps a meter id to the instant its meter was exchanged; from then on
    its registers restart at ``EXCHANGE_START_KWH``. Pass what the simulator was started
    with (``--seed``, ``--counter-drop``) to get what it serves.
    """
    ts = _utc(ts)
    integral = _integral(seed, meter_index(meter_id))
    imp, exp = integral.at(ts)
    drop_at = (counter_drops or {}).get(meter_id)
    if drop_at is not None and ts >= _utc(drop_at):
        imp0, exp0 = integral.at(_utc(drop_at))
        imp = imp - imp0 + EXCHANGE_START_KWH[0]
        exp = exp - exp0 + EXCHANGE_START_KWH[1]
    return round(imp, 3), round(exp, 3)


def power_kw(meter_id: str, ts: datetime, *, seed: int = 42) -> float:
    """Net active power (positive = import) in the quarter hour holding ``ts``."""
    hh = household(seed, meter_index(meter_id))
    k = int((_utc(ts) - EPOCH).total_seconds() // QUARTER_S)
    pv, load = quarter_hour_energy(seed, hh, np.array([k]))
    return round(float(load[0] - pv[0]) * 4.0, 3)


def floor_quarter(ts: datetime) -> datetime:
    """Latest quarter-hour boundary at or before ``ts`` (UTC)."""
    ts = _utc(ts)
    seconds = (ts - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=(seconds // QUARTER_S) * QUARTER_S)


def ceil_quarter(ts: datetime) -> datetime:
    floor = floor_quarter(ts)
    return floor if floor == _utc(ts) else floor + QUARTER
