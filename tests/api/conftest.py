"""A warehouse of simulated households run through the real pipeline, keys for two
partners and a customer, and the API serving it on a free 127.0.0.1 port."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from vbatt.readings import Reading
from vbatt.simulator.households import ground_truth

FIRST_DAY = date(2025, 6, 24)  # crosses a month boundary and a reset
DAYS = 10
GAP = (datetime(2025, 6, 27, 9, 7, tzinfo=UTC), datetime(2025, 6, 27, 13, 52, tzinfo=UTC))

# battery, name, partner, customer, meter, capacity, reset date
BATTERIES = [
    ("b-ewa-1", "Solar battery Meier", "ewa", "c-1", "SIM-0001", 5.0, None),
    ("b-ewa-2", "Solar battery Keller", "ewa", "c-2", "SIM-0002", 0.0, date(2025, 7, 1)),
    ("b-sw-1", "Sonnenspeicher Weber", "stadtwerk", "c-9", "SIM-0003", 2.5, None),
]


# a meter the simulated smart-me cloud reports without an export register
IMPORT_ONLY_METER = "SIM-0005"
# the meter of the batteries the write tests create for partner solarwerk: one no other
# partner's battery uses (a meter serves one partner at a time), which the simulated cloud
# knows with both registers
SOLAR_METER = "SIM-0004"


@dataclass
class ApiWarehouse:
    pipeline: object
    # "ewa", "stadtwerk", "c-1" -> read-only keys; "ewa-write", "stadtwerk-write",
    # "solar-write" (partner solarwerk) -> keys that may write
    keys: dict[str, str]

    @property
    def marts(self) -> str:
        return f"{self.pipeline.schema}_marts"

    @property
    def raw(self) -> str:
        return self.pipeline.raw

    def query(self, sql: str, **params) -> list[dict]:
        from sqlalchemy import text

        with self.pipeline.engine.connect() as conn:
            rows = conn.execute(text(sql.format(marts=self.marts, raw=self.raw)), params)
            return [dict(r._mapping) for r in rows]


def _readings(meter_id: str) -> list[Reading]:
    start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC) - timedelta(
        hours=2
    )
    out = []
    for k in range((DAYS * 96) + 9):
        ts = start + timedelta(minutes=15 * k)
        if meter_id == "SIM-0001" and GAP[0] < ts < GAP[1]:
            continue  # a gap: its quarter hours are interpolated, i.e. estimated
        imp, exp = ground_truth(meter_id, ts, seed=42)
        out.append(Reading(meter_id, ts, imp, exp))
    return out


@pytest.fixture(scope="session")
def api_warehouse(engine, warehouse_url, tmp_path_factory) -> ApiWarehouse:
    from tests.pipeline import Pipeline
    from vbatt.api.keys import Principal, create_key

    p = Pipeline(
        engine, warehouse_url, f"t_api_{secrets.token_hex(3)}", tmp_path_factory.mktemp("dbt")
    )
    for meter in sorted({b[4] for b in BATTERIES}):
        p.load(_readings(meter))
    p.batteries(
        [
            {
                "battery_id": b,
                "name": n,
                "partner_id": partner,
                "customer_id": c,
                "meter_id": m,
                "capacity_kwh": cap,
                "start_date": FIRST_DAY,
                "reset_date": reset,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 0.0,
            }
            for b, n, partner, c, m, cap, reset in BATTERIES
        ]
    )
    p.run()
    keys = {
        "ewa": create_key(engine, Principal(partner_id="ewa"), raw_schema=p.raw).key,
        "stadtwerk": create_key(engine, Principal(partner_id="stadtwerk"), raw_schema=p.raw).key,
        "c-1": create_key(engine, Principal("ewa", "c-1"), raw_schema=p.raw).key,
        "ewa-write": create_key(
            engine, Principal("ewa", can_write=True), label="portal", raw_schema=p.raw
        ).key,
        "stadtwerk-write": create_key(
            engine, Principal("stadtwerk", can_write=True), raw_schema=p.raw
        ).key,
        # a partner without batteries of its own: the write tests create theirs there, so
        # the other tests' partners keep exactly their batteries
        "solar-write": create_key(
            engine, Principal("solarwerk", can_write=True), raw_schema=p.raw
        ).key,
    }
    yield ApiWarehouse(p, keys)
    p.drop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smartme_cloud() -> str:
    """The simulated smart-me cloud (its own process) that the write API asks about meters."""
    from vbatt.simulator import running

    with running(meters=5, faults={"import_only": [IMPORT_ONLY_METER]}) as url:
        yield url


@pytest.fixture(scope="session")
def api_app(api_warehouse, warehouse_url, smartme_cloud):
    from vbatt.api import create_app
    from vbatt.api.meter_check import SmartMeMeterCheck
    from vbatt.api.security import KeyThrottle
    from vbatt.ingest.smartme import SmartMeConfig
    from vbatt.simulator.app import DEMO_API_KEY

    cloud = SmartMeConfig(base_url=smartme_cloud, auth="api_key", api_key=DEMO_API_KEY)
    return create_app(
        url=warehouse_url,
        marts_schema=api_warehouse.marts,
        raw_schema=api_warehouse.raw,
        meter_check=SmartMeMeterCheck(cloud),
        # the access tests send wrong keys by the dozen from one address on purpose; the
        # throttle's own test (test_security.py) runs an app with the defaults
        key_throttle=KeyThrottle(free=100_000),
    )


@pytest.fixture(scope="session")
def api_url(api_app) -> str:
    """uvicorn in a thread of the test process, stopped at the end of the session."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/Health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("the API did not start")
    yield url
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def client(api_url):
    with httpx.Client(base_url=api_url, timeout=30) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {key}"}


# -- a battery near now, for the live view (docs/rules.md, "The live battery") -----------

LIVE_BATTERIES = tuple(f"b-live-{n}" for n in range(1, 7))  # one per test: any order
NEW_METER = "LIVE-5B"  # b-live-5's meter from today on (a second version, capacity 2.5 kWh)
LIVE_INITIAL_KWH = 2.0


@dataclass
class LiveWarehouse:
    pipeline: object
    key: str
    ledger_end: datetime  # end of the ledger's latest quarter hour (the last reading's time)
    counters: dict[str, tuple[float, float]]  # meter -> (import, export) at ledger_end

    @property
    def raw(self) -> str:
        return self.pipeline.raw

    def meter(self, battery_id: str) -> str:
        return "LIVE-" + battery_id.rsplit("-", 1)[1]

    def query(self, sql: str, **params) -> list[dict]:
        from sqlalchemy import text

        marts = f"{self.pipeline.schema}_marts"
        with self.pipeline.engine.connect() as conn:
            rows = conn.execute(text(sql.format(marts=marts, raw=self.raw)), params)
            return [dict(r._mapping) for r in rows]


@pytest.fixture(scope="session")
def live_warehouse(engine, warehouse_url, tmp_path_factory) -> LiveWarehouse:
    """Batteries whose ledger ends half an hour ago (readings every quarter hour since the
    local midnight of the day before the ledger's last day), so a push now is just past
    the ledger."""
    from zoneinfo import ZoneInfo

    from tests.pipeline import Pipeline
    from vbatt.api.keys import Principal, create_key
    from vbatt.warehouse.versions import add_version

    p = Pipeline(
        engine, warehouse_url, f"t_live_{secrets.token_hex(3)}", tmp_path_factory.mktemp("dbt")
    )
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    end -= timedelta(minutes=30)
    # the day before the ledger's end, not before today: b-live-5's second version starts
    # on the ledger's last local day, so the ledger covers its start at any time of day
    # (in the first 45 minutes after local midnight, "today" began after the ledger's end
    # and the old meter's push rightly moved the quarter hours still before it)
    start = end.astimezone(ZoneInfo("Europe/Zurich")).date() - timedelta(days=1)
    first = datetime.combine(start, datetime.min.time(), ZoneInfo("Europe/Zurich"))
    first = first.astimezone(UTC) - timedelta(hours=1)
    counters = {}
    for meter in [f"LIVE-{b.rsplit('-', 1)[1]}" for b in LIVE_BATTERIES] + [NEW_METER]:
        readings, k, ts = [], 0, first
        while ts <= end:  # net +0.15 and -0.15 kWh in turn: the level stays near 2 kWh
            imp, exp = 100 + 0.15 * k, 200 + 0.3 * ((k + 1) // 2)
            readings.append(Reading(meter, ts, imp, exp))
            k, ts = k + 1, ts + timedelta(minutes=15)
        counters[meter] = (readings[-1].import_kwh, readings[-1].export_kwh)
        p.load(readings)
    p.batteries(
        [
            {
                "battery_id": b,
                "name": f"Live battery {b[-1]}",
                "partner_id": "live",
                "customer_id": "c-live",
                "meter_id": "LIVE-" + b.rsplit("-", 1)[1],
                "capacity_kwh": 5.0,
                "start_date": start,
                "reset_date": None,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": LIVE_INITIAL_KWH,
            }
            for b in LIVE_BATTERIES
        ]
    )
    with engine.begin() as conn:
        add_version(
            conn,
            "b-live-5",
            start + timedelta(days=1),
            {"meter_id": NEW_METER, "capacity_kwh": 2.5},
            recorded_by="tests",
            backdate=True,
            raw_schema=p.raw,
        )
    p.run()
    key = create_key(engine, Principal(partner_id="live"), raw_schema=p.raw).key
    yield LiveWarehouse(p, key, end, counters)
    p.drop()


def serve(app) -> tuple[str, object]:
    """uvicorn in a thread of the test process; returns the URL and the server."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/Health", timeout=1).status_code == 200:
                return url, server
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the API did not start")


@pytest.fixture(scope="session")
def live_url(live_warehouse, warehouse_url) -> str:
    from vbatt.api import create_app

    app = create_app(
        url=warehouse_url,
        marts_schema=f"{live_warehouse.pipeline.schema}_marts",
        raw_schema=live_warehouse.raw,
    )
    url, server = serve(app)
    yield url
    server.should_exit = True
