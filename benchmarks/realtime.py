"""Benchmark the realtime receiver: N meters pushing every P seconds to `vbatt serve`.

In a throw-away embedded cluster: N batteries (GUID meter ids, as smart-me's) with a short
reading history run through dbt, so `/api/Devices/{id}` answers from real marts. Then
`python -m vbatt.api` runs on 127.0.0.1 with the receiver on, and an open-loop client
sends each meter's protobuf body on its own schedule (N / P bodies a second, spread evenly,
whatever the answers), for D seconds. Measured in the same run:

  post       p50/p95/p99 latency of POST /smartme/realtime, bodies/s taken (2xx)
  floor      p95 of GET /api/Health (an empty endpoint of the same server) under the load
  visible    for a sample of pushes: time from the POST to `/api/Devices/{battery}`
             showing the push's time as ValueDate (the live view); and, where the server
             has it, to the value arriving on an open SSE stream (measure_sse_visibility)
  kept       every value answered 2xx is in raw.realtime_values afterwards (nothing lost)
  size       raw rows and bytes per meter per day (table, indexes, quarters, marks),
             at this push rate and at one push a second

Writes benchmarks/results/realtime.json.

    .venv/bin/python benchmarks/realtime.py                          # 10,000 meters every 10 s
    .venv/bin/python benchmarks/realtime.py --meters 500 --duration 20  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from report import write_report
from rich.console import Console
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))

from vbatt.api.keys import Principal, create_key  # noqa: E402
from vbatt.ingest.realtime_pb import encode_body  # noqa: E402
from vbatt.ledger.dbt_runner import run_dbt  # noqa: E402
from vbatt.readings import Reading  # noqa: E402
from vbatt.warehouse import embedded  # noqa: E402
from vbatt.warehouse.loader import load_readings, upsert_batteries  # noqa: E402
from vbatt.warehouse.migrate import migrate  # noqa: E402

console = Console()
RESULTS = Path(__file__).parent / "results" / "realtime.json"
TARGETS = {"post_p95_ms": 50.0, "visible_p95_ms": 1000.0}
USER, PASSWORD = "bench", uuid.uuid4().hex
MAX_BODIES = 2_000_000  # bounded whatever the arguments
VISIBLE_TIMEOUT_S = 5.0
IN_FLIGHT = 128  # concurrent POSTs (connections) of the load client
DRAIN_TIMEOUT_S = 180.0  # after the send window, how long the last pushes may take


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(url: str, meters: int) -> tuple[list[str], str]:
    """Batteries and a little history through dbt; returns meter ids and a partner key."""
    engine = create_engine(url)
    migrate(engine)
    rng = random.Random(7)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(meters)]
    start = date.today() - timedelta(days=1)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": f"rt-{i:05d}",
                "name": f"Realtime {i}",
                "partner_id": "bench",
                "customer_id": f"c-{i:05d}",
                "meter_id": m,
                "capacity_kwh": 10.0,
                "start_date": start,
                "reset_date": None,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 0.0,
            }
            for i, m in enumerate(ids)
        ],
    )
    t0 = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    load_readings(
        engine,
        [Reading(m, t0 + timedelta(hours=h), 100.0 + h, 50.0 + h / 2) for m in ids for h in (0, 1)],
        source="bench",
    )
    with tempfile.TemporaryDirectory() as target:
        run_dbt(["run"], url=url, target_dir=Path(target))
    key = create_key(engine, Principal(partner_id="bench"), label="realtime benchmark").key
    engine.dispose()
    return ids, key


def start_api(url: str, port: int, log: Path) -> subprocess.Popen:
    env = os.environ | {"VBATT_REALTIME_USER": USER, "VBATT_REALTIME_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbatt.api", "--port", str(port), "--warehouse-url", url]
        + ["--log-level", "warning"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/Health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the API did not start: see {log}")


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {
        "n": len(values),
        "p50_ms": round(q[49], 2),
        "p95_ms": round(q[94], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(max(values), 2),
    }


async def visible_in_devices(
    client: httpx.AsyncClient, battery: str, key: str, at: datetime, sent: float
) -> float | None:
    """ms from the POST until /api/Devices/{battery} shows ``at`` as ValueDate (None: never,
    within VISIBLE_TIMEOUT_S: a build without the live view)."""
    headers = {"Authorization": f"ApiKey {key}"}
    while time.perf_counter() - sent < VISIBLE_TIMEOUT_S:
        resp = await client.get(f"/api/Devices/{battery}", headers=headers)
        if resp.status_code == 200:
            value = resp.json().get("ValueDate")
            if value and _same_instant(value, at):
                return (time.perf_counter() - sent) * 1000
        await asyncio.sleep(0.05)
    return None


def _same_instant(value: str, at: datetime) -> bool:
    try:
        shown = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return abs((shown - at).total_seconds()) < 1e-3


class SseWatch:
    """Hook for the live view's SSE stream (``GET /v1/batteries/{id}/live``, text/event-stream):
    one open stream per watched battery for the whole run; ``visible_ms`` waits for an
    event carrying the push's time. Disabled ("absent") when the server has no such route
    (a build before the live view)."""

    ROUTE = "/v1/batteries/{battery}/live"

    def __init__(self, base: str, key: str, batteries: list[str]) -> None:
        self.base, self.key, self.batteries = base, key, batteries
        self.status = "absent"
        self.seen: dict[str, list[tuple[float, set[datetime]]]] = {b: [] for b in batteries}
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        headers = {"Authorization": f"ApiKey {self.key}", "Accept": "text/event-stream"}
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as client:
            try:
                async with client.stream(
                    "GET", self.ROUTE.format(battery=self.batteries[0]), headers=headers
                ) as resp:
                    if resp.status_code != 200:
                        self.status = f"absent (HTTP {resp.status_code})"
                        return
            except httpx.HTTPError as exc:
                self.status = f"absent ({type(exc).__name__})"
                return
        self.status = "open"
        self.tasks = [asyncio.create_task(self._read(b, headers)) for b in self.batteries]

    async def _read(self, battery: str, headers: dict) -> None:
        async with (
            httpx.AsyncClient(base_url=self.base, timeout=None) as client,
            client.stream("GET", self.ROUTE.format(battery=battery), headers=headers) as resp,
        ):
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    self.seen[battery].append((time.perf_counter(), _instants(line[5:])))

    async def visible_ms(self, battery: str, at: datetime, sent: float) -> float | None:
        if self.status != "open" or battery not in self.seen:
            return None
        while time.perf_counter() - sent < VISIBLE_TIMEOUT_S:
            for received, instants in self.seen[battery]:
                if received >= sent and any(abs((t - at).total_seconds()) < 1e-3 for t in instants):
                    return (received - sent) * 1000
            await asyncio.sleep(0.01)
        return None

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _instants(data: str) -> set[datetime]:
    """Every ISO instant among the values of an event's JSON object."""
    try:
        event = json.loads(data)
    except ValueError:
        return set()
    found = set()
    for value in event.values() if isinstance(event, dict) else []:
        if isinstance(value, str):
            try:
                ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if ts.tzinfo is not None:
                found.add(ts)
    return found


async def run_load(
    base: str, ids: list[str], key: str, period_s: float, duration_s: float, sample_every: int
) -> dict:
    meters = len(ids)
    rate = meters / period_s
    total = min(int(rate * duration_s), MAX_BODIES)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    post_ms: list[float] = []
    health_ms: list[float] = []
    visible_ms: list[float] = []
    sse_ms: list[float] = []
    invisible = sse_missed = 0
    failures: dict[str, int] = {}
    accepted: list[tuple[str, datetime, float, float, float]] = []
    tasks: set[asyncio.Task] = set()
    lag_ms: list[float] = []
    live_view, probing = [True], [False]  # /api/Devices shows pushes; a probe is running
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    auth = httpx.BasicAuth(USER, PASSWORD)
    counters = [100.0 + 1.0] * meters

    async with (
        httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client,
        httpx.AsyncClient(base_url=base, timeout=30) as probe,
    ):

        async def push(n: int, due: float) -> None:
            nonlocal invisible, sse_missed
            i = n % meters
            counters[i] += 0.001 * (1 + n % 7)
            at = datetime.now(UTC)
            values = (round(counters[i], 3), 51.0, round(1.5 - (n % 30) / 10, 2))
            body = encode_body(
                [
                    (
                        ids[i],
                        at,
                        [("1-0:1.8.0", values[0]), ("1-0:2.8.0", values[1])]
                        + [("1-0:16.7.0", values[2]), ("1-0:32.7.0", 231.0)],
                    )
                ]
            )
            async with in_flight:  # httpx's pool slows down badly with thousands waiting
                lag_ms.append((time.perf_counter() - due) * 1000)
                sent = time.perf_counter()
                try:
                    resp = await client.post("/smartme/realtime", content=body, auth=auth)
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    return
                post_ms.append((time.perf_counter() - sent) * 1000)
            if resp.status_code != 200:
                failures[str(resp.status_code)] = failures.get(str(resp.status_code), 0) + 1
                return
            accepted.append((ids[i], at, *values))
            if i < len(sse.batteries) and sse.status == "open":
                seen = await sse.visible_ms(f"rt-{i:05d}", at, sent)
                if seen is None:
                    sse_missed += 1
                else:
                    sse_ms.append(seen)
            elif live_view[0] and n % sample_every == 0 and not probing[0]:
                probing[0] = True  # one poller at a time: the probe must not be the load
                seen = await visible_in_devices(probe, f"rt-{i:05d}", key, at, sent)
                probing[0] = False
                if seen is None:
                    invisible += 1
                    live_view[0] = len(visible_ms) > 0  # never seen: a build without it
                else:
                    visible_ms.append(seen)

        async def health() -> None:
            sent = time.perf_counter()
            resp = await probe.get("/api/Health")
            if resp.status_code == 200:
                health_ms.append((time.perf_counter() - sent) * 1000)

        sse = SseWatch(base, key, [f"rt-{i:05d}" for i in range(min(20, meters))])
        await sse.start()
        start = time.perf_counter()
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(push(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if n % 20 == 0:
                t = asyncio.create_task(health())
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        sending = time.perf_counter() - start
        _, late = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S) if tasks else ((), ())
        for task in late:  # bounded in time: what is still waiting then is not sent
            task.cancel()
        elapsed = time.perf_counter() - start
        await sse.stop()

    return {
        "bodies_scheduled": total,
        "not_sent_in_time": len(late),
        "send_lag": stats(lag_ms),
        "offered_bodies_per_s": round(rate, 1),
        "bodies_per_s_taken": round(len(accepted) / elapsed, 1),
        "send_seconds": round(sending, 2),
        "seconds": round(elapsed, 2),
        "accepted": accepted,
        "failures": failures,
        "post": stats(post_ms),
        "floor_health": stats(health_ms),
        "visible_devices": stats(visible_ms)
        | {"never_visible": invisible, "live_view_in_build": live_view[0]},
        "visible_sse": stats(sse_ms) | {"status": sse.status, "never_visible": sse_missed},
    }


def check_kept(url: str, accepted: list[tuple]) -> dict:
    """Every value answered 2xx is in the raw layer (compared row by row)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = {
            (r.meter_id, r.value_at, r.import_kwh, r.export_kwh, r.power_kw)
            for r in conn.execute(
                text(
                    "select meter_id, value_at, import_kwh, export_kwh, power_kw from raw.realtime_values"
                )
            )
        }
    missing = [a for a in accepted if a not in stored]
    engine.dispose()
    return {"answered_2xx": len(accepted), "stored_rows": len(stored), "missing": len(missing)}


def sizes(url: str, meters: int, period_s: float) -> dict:
    """Bytes per stored value (heap + indexes of the partitions, quarters, marks), scaled to
    a meter-day at this push rate and at one push a second."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("select count(*) from raw.realtime_values")).scalar()
        parts = conn.execute(
            text(
                "select coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) from pg_inherits i"
                " where i.inhparent = 'raw.realtime_values'::regclass"
            )
        ).scalar()
        heap = conn.execute(
            text(
                "select coalesce(sum(pg_relation_size(i.inhrelid)), 0) from pg_inherits i"
                " where i.inhparent = 'raw.realtime_values'::regclass"
            )
        ).scalar()
        side = conn.execute(
            text(
                "select pg_total_relation_size('raw.realtime_quarters')"
                " + pg_total_relation_size('raw.realtime_marks')"
            )
        ).scalar()
        quarters = conn.execute(text("select count(*) from raw.realtime_quarters")).scalar()
    engine.dispose()
    parts, heap, side = float(parts), float(heap), float(side)
    per_row = parts / rows if rows else 0
    per_day_rate = 86_400 / period_s
    return {
        "stored_rows": rows,
        "bytes_per_row_with_indexes": round(per_row, 1),
        "heap_bytes_per_row": round(heap / rows, 1) if rows else 0,
        "quarter_rows": quarters,
        "side_tables_bytes": side,
        f"rows_per_meter_day_every_{period_s:g}s": int(per_day_rate),
        f"mb_per_meter_day_every_{period_s:g}s": round(per_row * per_day_rate / 1e6, 2),
        "rows_per_meter_day_every_1s": 86_400,
        "mb_per_meter_day_every_1s": round(per_row * 86_400 / 1e6, 2),
        "quarter_rows_per_meter_day": 96,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument(
        "--period", type=float, default=10.0, help="seconds between a meter's pushes"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--sample-every", type=int, default=97, help="visibility sample")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not 0 < args.duration <= 600:
        parser.error("--duration is bounded to 600 s")

    data_dir = Path(tempfile.mkdtemp(prefix="vbatt-bench-realtime-"))
    url = embedded.start(data_dir)
    steps = {}
    try:
        t = time.perf_counter()
        ids, key = setup(url, args.meters)
        steps["setup_s"] = round(time.perf_counter() - t, 1)
        console.log(f"{args.meters:,} batteries with marts ready in {steps['setup_s']} s")
        port = free_port()
        api = start_api(url, port, data_dir / "api.log")
        try:
            base = f"http://127.0.0.1:{port}"
            console.log(
                f"pushing {args.meters / args.period:,.0f} bodies/s for {args.duration:g} s"
            )
            measured = asyncio.run(
                run_load(base, ids, key, args.period, args.duration, args.sample_every)
            )
        finally:
            api.terminate()
            api.wait(timeout=30)
        kept = check_kept(url, measured.pop("accepted"))
        size = sizes(url, args.meters, args.period)
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)

    post, floor = measured["post"], measured["floor_health"]
    visible = measured["visible_devices"]
    summary = {
        "meters": args.meters,
        "period_s": args.period,
        "offered_bodies_per_s": measured["offered_bodies_per_s"],
        "bodies_per_s_taken": measured["bodies_per_s_taken"],
        "post_p50_ms": post.get("p50_ms"),
        "post_p95_ms": post.get("p95_ms"),
        "post_p99_ms": post.get("p99_ms"),
        "floor_empty_endpoint_p95_ms": floor.get("p95_ms"),
        "post_p95_over_floor": round(post["p95_ms"] / floor["p95_ms"], 2)
        if post.get("p95_ms") and floor.get("p95_ms")
        else None,
        "visible_in_devices_p95_ms": visible.get("p95_ms"),
        "never_visible_in_devices": visible["never_visible"],
        "visible_in_sse_p95_ms": measured["visible_sse"].get("p95_ms"),
        "sse": measured["visible_sse"]["status"],
        "nothing_lost": kept["missing"] == 0,
        "failures": measured["failures"],
        "mb_per_meter_day_every_1s": size["mb_per_meter_day_every_1s"],
        "targets": TARGETS,
    }
    write_report(args.out, summary, console, load=measured, kept=kept, size=size, steps=steps)


if __name__ == "__main__":
    main()
