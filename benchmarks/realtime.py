"""Benchmark the realtime receiver: N meters pushing every P seconds to `vbatt serve`.

In a throw-away embedded cluster: N batteries (GUID meter ids, as smart-me's) with a short
reading history run through dbt, so `/api/Devices/{id}` answers from real marts. Then
`python -m vbatt.api --workers W` (what `vbatt serve --workers W` runs) serves on
127.0.0.1 with the receiver on, and the load comes from C forked client processes: each
sends its share of the meters' protobuf bodies on an open-loop schedule (N / P bodies a
second in all, spread evenly, whatever the answers) as raw HTTP/1.1 over its own
keep-alive sockets (prebuilt request bytes, Basic auth header included), so the clients
cost little next to the server they measure. Measured in the same run:

  post       bodies/s taken (2xx); p50/p95/p99 of the POST from the moment it is sent,
             and from its scheduled time (includes any wait for a free connection)
  floor      the same statistics for GET /api/Health (an empty endpoint of the same
             server), sent by the same clients over the same sockets during the load
  visible    for every push of the watched batteries (--watch, spread over the fleet):
             time from the POST to `/api/Devices/{battery}` showing the push's time as
             ValueDate (whole seconds there, so compared at second resolution), and to
             the value arriving on an SSE stream (/v1/batteries/{id}/live) opened before
  kept       every value answered 2xx is in raw.realtime_values afterwards (nothing lost)
  cpu        CPU seconds of the server, the clients, PostgreSQL, the prober and the rest
             of the machine during the load (psutil)
  size       raw rows and bytes per meter per day (table, indexes, quarters, marks),
             at this push rate and at one push a second

Writes benchmarks/results/realtime.json.

    .venv/bin/python benchmarks/realtime.py                          # 10,000 meters every 10 s
    .venv/bin/python benchmarks/realtime.py --meters 500 --duration 20  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import random
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psutil
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
POLL_S = 0.025  # how often a visibility probe asks /api/Devices/{id}
HEALTH_EVERY = 20  # one GET /api/Health per this many scheduled pushes (the floor)
DRAIN_TIMEOUT_S = 60.0  # after the send window, how long the last answers may take
LEAD_S = 4.0  # clients build their requests before the common start
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    # the ledger as it stands in production, run every 15 minutes: its latest quarter hour
    # ends at most 15 minutes ago, so the live view advances it by one partial step
    now = datetime.now(UTC)
    last = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    load_readings(
        engine,
        [Reading(m, last - timedelta(hours=1), 100.0, 50.0) for m in ids]
        + [Reading(m, last, 101.0, 51.0) for m in ids],
        source="bench",
    )
    with tempfile.TemporaryDirectory() as target:
        run_dbt(["run"], url=url, target_dir=Path(target))
    key = create_key(engine, Principal(partner_id="bench"), label="realtime benchmark").key
    engine.dispose()
    return ids, key


def start_api(url: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = os.environ | {"VBATT_REALTIME_USER": USER, "VBATT_REALTIME_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbatt.api", "--port", str(port), "--warehouse-url", url]
        + ["--log-level", "warning", "--workers", str(workers)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with code {proc.returncode}: see {log}")
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


# -- the schedule: push n is meter n % N at start + n / rate, with deterministic values ----


class Schedule:
    def __init__(self, ids: list[str], period_s: float, duration_s: float, start_wall: float):
        self.ids, self.meters = ids, len(ids)
        self.rate = self.meters / period_s
        self.total = min(int(self.rate * duration_s), MAX_BODIES)
        self.start_wall = start_wall  # time.time() of push 0; its monotonic twin is sent later

    def offset(self, n: int) -> float:
        return n / self.rate

    def value(self, n: int) -> tuple[str, datetime, float, float, float]:
        """(meter, time, import kWh, export kWh, power kW) of push n: counters that rise."""
        i, k = n % self.meters, n // self.meters
        micros = round((self.start_wall + self.offset(n)) * 1e6)
        at = EPOCH + timedelta(microseconds=micros)
        return (
            self.ids[i],
            at,
            round(101.0 + 0.004 * (k + 1), 3),
            51.0,
            round(1.5 - (n % 30) / 10, 2),
        )

    def body(self, n: int) -> bytes:
        meter, at, imp, exp, power = self.value(n)
        registers = [("1-0:1.8.0", imp), ("1-0:2.8.0", exp), ("1-0:16.7.0", power)]
        return encode_body([(meter, at, [*registers, ("1-0:32.7.0", 231.0)])])


def _request(method: str, path: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Conn:
    """One keep-alive socket and the request in flight on it."""

    __slots__ = ("buf", "job", "sent", "sock")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf, self.job, self.sent = b"", None, 0.0

    def answer(self) -> int | None:
        """The status once the whole response is in the buffer (it is removed), else None."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buf) < end + 4 + length:
            return None
        self.buf = self.buf[end + 4 + length :]
        return int(head[0].split()[1])


def client(pipe, k: int, clients: int, schedule: Schedule, port: int, connections: int) -> None:
    """A load client process: its share of the pushes (n % clients == k) and of the health
    probes, open loop over ``connections`` keep-alive sockets; sends back per request
    (kind, n, due, sent, done, status)."""
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    post_headers = {"Authorization": auth, "Content-Type": "application/octet-stream"}
    health = _request("GET", "/api/Health", port, {}, b"")
    jobs = []  # (offset, kind, n, request bytes)
    for n in range(k, schedule.total, clients):
        body = schedule.body(n)
        jobs.append(
            (
                schedule.offset(n),
                "post",
                n,
                _request("POST", "/smartme/realtime", port, post_headers, body),
            )
        )
        if (n // clients) % HEALTH_EVERY == 0:
            jobs.append((schedule.offset(n), "health", n, health))
    conns = [_Conn(port) for _ in range(connections)]
    pipe.send("ready")
    start_mono = pipe.recv()  # the common start, time.monotonic() (system-wide clock)
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    idle, waiting, results = deque(conns), deque(), []
    busy, nxt = 0, 0
    drain_until = start_mono + schedule.offset(schedule.total) + DRAIN_TIMEOUT_S

    def send(c: _Conn, job) -> None:
        c.job, c.sent = job, time.monotonic()
        c.sock.sendall(job[3])

    while nxt < len(jobs) or waiting or busy:
        now = time.monotonic()
        if now > drain_until:
            break
        while nxt < len(jobs) and start_mono + jobs[nxt][0] <= now:
            waiting.append(jobs[nxt])
            nxt += 1
        while waiting and idle:
            send(idle.popleft(), waiting.popleft())
            busy += 1
        timeout = 0.05
        if nxt < len(jobs) and not waiting:
            timeout = max(0.0, min(timeout, start_mono + jobs[nxt][0] - time.monotonic()))
        for key, _ in sel.select(timeout):
            c = key.data
            data = c.sock.recv(65536)
            if not data:  # the server closed the connection: the request has no answer
                job = c.job
                results.append((job[1], job[2], start_mono + job[0], c.sent, time.monotonic(), 0))
                sel.unregister(c.sock)
                c.sock.close()
                busy -= 1
                fresh = _Conn(port)
                sel.register(fresh.sock, selectors.EVENT_READ, fresh)
                idle.append(fresh)
                continue
            c.buf += data
            status = c.answer()
            if status is not None:
                job = c.job
                results.append(
                    (job[1], job[2], start_mono + job[0], c.sent, time.monotonic(), status)
                )
                busy -= 1
                if waiting:
                    send(c, waiting.popleft())
                    busy += 1
                else:
                    idle.append(c)
    unanswered = busy + len(waiting) + (len(jobs) - nxt)
    for c in conns:
        c.sock.close()
    pipe.send((results, unanswered))
    pipe.close()


# -- the prober: SSE streams and /api/Devices polls for the watched batteries -------------


def _floor_s(ts: datetime) -> datetime:
    return ts.replace(microsecond=0)


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


class Prober:
    """Opens an SSE stream per watched battery before the load, and polls
    /api/Devices/{battery} from each watched push's scheduled time until it shows it."""

    ROUTE = "/v1/batteries/{battery}/live"

    def __init__(self, base: str, key: str, watched: list[int]) -> None:
        self.base, self.watched = base, watched
        self.headers = {"Authorization": f"ApiKey {key}"}
        self.events: dict[int, list[tuple[float, datetime]]] = {i: [] for i in watched}
        self.devices_seen: dict[int, float | None] = {}  # push n -> monotonic seen
        self.health_errors = 0
        self.sse_status = "not opened"
        self.tasks: list[asyncio.Task] = []

    async def open_streams(self) -> None:
        self.tasks = [asyncio.create_task(self._stream(i)) for i in self.watched]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(self.events.values()):
            await asyncio.sleep(0.05)  # each stream sends its state first
        opened = sum(1 for e in self.events.values() if e)
        self.sse_status = f"{opened} of {len(self.watched)} open"

    async def _stream(self, i: int) -> None:
        headers = self.headers | {"Accept": "text/event-stream"}
        async with (
            httpx.AsyncClient(base_url=self.base, timeout=None) as c,
            c.stream("GET", self.ROUTE.format(battery=f"rt-{i:05d}"), headers=headers) as resp,
        ):
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    at = _parse(json.loads(line[5:]).get("at"))
                    if at is not None:
                        self.events[i].append((time.monotonic(), at))

    async def watch_devices(self, schedule: Schedule, start_mono: float) -> None:
        meters = schedule.meters
        pushes = sorted(
            k * meters + i for i in self.watched for k in range(schedule.total // meters + 1)
        )
        pushes = [n for n in pushes if n < schedule.total]
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as c:
            await asyncio.gather(*(self._poll(c, schedule, start_mono, n) for n in pushes))

    async def _poll(self, c: httpx.AsyncClient, schedule: Schedule, start_mono: float, n: int):
        due = start_mono + schedule.offset(n)
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        want = _floor_s(schedule.value(n)[1])
        battery = f"rt-{n % schedule.meters:05d}"
        while time.monotonic() - due < VISIBLE_TIMEOUT_S:
            resp = await c.get(f"/api/Devices/{battery}", headers=self.headers)
            shown = _parse(resp.json().get("ValueDate")) if resp.status_code == 200 else None
            if shown is not None and shown >= want:
                self.devices_seen[n] = time.monotonic()
                return
            await asyncio.sleep(POLL_S)
        self.devices_seen[n] = None

    def sse_seen(self, n: int, schedule: Schedule, sent: float) -> float | None:
        want = _floor_s(schedule.value(n)[1])
        for received, at in self.events[n % schedule.meters]:
            if received >= sent and _floor_s(at) >= want:
                return received
        return None

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# -- CPU accounting ----------------------------------------------------------------------


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children, alive or reaped by it."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(_tree_cpu(p) for p in pids) for name, pids in groups.items()} | {
        "machine": _machine_busy(),
        "self": sum(psutil.Process().cpu_times()[:2]),
    }


def cpu_split(before: dict, after: dict, seconds: float) -> dict:
    used = {k: round(after[k] - before[k], 2) for k in before}
    mine = used["self"] + sum(v for k, v in used.items() if k not in ("machine", "self"))
    return {
        "seconds": round(seconds, 2),
        "cores": psutil.cpu_count(),
        "server_s": used["server"],
        "clients_s": used["clients"],
        "postgres_s": used["postgres"],
        "prober_s": used["self"],
        "rest_of_machine_s": round(max(0.0, used["machine"] - mine), 2),
        "machine_busy_share": round(used["machine"] / (seconds * psutil.cpu_count()), 3),
    }


def run_load(
    base: str,
    port: int,
    ids: list[str],
    key: str,
    args: argparse.Namespace,
    server_pid: int,
    postgres_pid: int,
) -> dict:
    schedule = Schedule(ids, args.period, args.duration, time.time() + LEAD_S)
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for k in range(args.clients):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=client, args=(theirs, k, args.clients, schedule, port, args.connections)
        )
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    step = max(1, len(ids) // max(1, args.watch))
    watched = list(range(0, len(ids), step))[: args.watch]
    prober = Prober(base, key, watched)

    async def probe() -> tuple[float, float]:
        await prober.open_streams()
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("a load client did not start")
        start_mono = time.monotonic() + max(0.2, schedule.start_wall - time.time())
        for pipe in pipes:
            pipe.send(start_mono)
        await prober.watch_devices(schedule, start_mono)
        await asyncio.sleep(max(0.0, start_mono + args.duration - time.monotonic()))
        await prober.close()
        return start_mono, time.monotonic()

    groups = {
        "server": [server_pid],
        "clients": [p.pid for p in procs],
        "postgres": [postgres_pid],
    }
    before = cpu_snapshot(groups)
    t0 = time.monotonic()
    start_mono, _ = asyncio.run(probe())
    outcome = [pipe.recv() for pipe in pipes]  # blocks until every client is done
    after = cpu_snapshot(groups)
    elapsed_cpu = time.monotonic() - t0
    for proc in procs:
        proc.join(10)

    posts = [r for res, _ in outcome for r in res if r[0] == "post"]
    health = [r for res, _ in outcome for r in res if r[0] == "health"]
    unanswered = sum(u for _, u in outcome)
    ok = [r for r in posts if 200 <= r[5] < 300]
    sent = {r[1]: r[3] for r in ok}
    failures: dict[str, int] = {}
    for r in posts:
        if not 200 <= r[5] < 300:
            name = str(r[5]) if r[5] else "connection closed"
            failures[name] = failures.get(name, 0) + 1
    if unanswered:
        failures["no answer in time"] = unanswered
    last = max((r[4] for r in ok), default=start_mono)
    window = max(args.duration, last - start_mono)

    devices_ms, devices_missed, sse_ms, sse_missed = [], 0, [], 0
    for n, seen in sorted(prober.devices_seen.items()):
        if n not in sent:
            continue
        if seen is None:
            devices_missed += 1
        else:
            devices_ms.append((seen - sent[n]) * 1000)
        got = prober.sse_seen(n, schedule, sent[n])
        if got is None:
            sse_missed += 1
        else:
            sse_ms.append((got - sent[n]) * 1000)

    return {
        "bodies_scheduled": schedule.total,
        "offered_bodies_per_s": round(schedule.rate, 1),
        "bodies_answered_2xx": len(ok),
        "bodies_per_s_taken": round(len(ok) / window, 1),
        "window_s": round(window, 2),
        "workers": args.workers,
        "clients": args.clients,
        "connections_per_client": args.connections,
        "accepted": [schedule.value(r[1]) for r in ok],
        "failures": failures,
        "post": stats([(r[4] - r[3]) * 1000 for r in posts if r[5]]),
        "post_from_schedule": stats([(r[4] - r[2]) * 1000 for r in posts if r[5]]),
        "floor_health": stats([(r[4] - r[3]) * 1000 for r in health if r[5] == 200]),
        "floor_health_from_schedule": stats([(r[4] - r[2]) * 1000 for r in health if r[5] == 200]),
        "visible_devices": stats(devices_ms)
        | {"never_visible": devices_missed, "watched_batteries": len(watched)},
        "visible_sse": stats(sse_ms) | {"status": prober.sse_status, "never_visible": sse_missed},
        "cpu": cpu_split(before, after, elapsed_cpu),
    }


def list_devices(base: str, key: str, times: int = 3) -> dict:
    """GET /api/Devices (every battery of the key, each with live data) after the load:
    the list's live view reads all batteries together."""
    ms, count = [], 0
    with httpx.Client(base_url=base, timeout=300) as c:
        for _ in range(times):
            t = time.perf_counter()
            resp = c.get("/api/Devices", headers={"Authorization": f"ApiKey {key}"})
            ms.append((time.perf_counter() - t) * 1000)
            resp.raise_for_status()
            count = len(resp.json())
    return {"devices": count, "median_ms": round(statistics.median(ms), 1), "ms": ms}


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
        # the rows of one receiver transaction share its xmin: how many pushes went together
        batches = conn.execute(
            text("select count(distinct xmin::text) from raw.realtime_values")
        ).scalar()
    missing = [a for a in accepted if a not in stored]
    engine.dispose()
    return {
        "answered_2xx": len(accepted),
        "stored_rows": len(stored),
        "missing": len(missing),
        "transactions": batches,
        "rows_per_transaction": round(len(stored) / batches, 2) if batches else None,
    }


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
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--connections", type=int, default=64, help="sockets per client")
    parser.add_argument(
        "--watch", type=int, default=20, help="batteries whose pushes are timed to visibility"
    )
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
        api = start_api(url, port, args.workers, data_dir / "api.log")
        try:
            base = f"http://127.0.0.1:{port}"
            console.log(
                f"pushing {args.meters / args.period:,.0f} bodies/s for {args.duration:g} s"
                f" from {args.clients} clients x {args.connections} sockets"
                f" to {args.workers} server workers"
            )
            postgres = int((data_dir / "postmaster.pid").read_text().split()[0])
            measured = run_load(base, port, ids, key, args, api.pid, postgres)
            measured["devices_list"] = list_devices(base, key)
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
        "duration_s": args.duration,
        "workers": args.workers,
        "clients": args.clients,
        "offered_bodies_per_s": measured["offered_bodies_per_s"],
        "bodies_per_s_taken": measured["bodies_per_s_taken"],
        "bodies_answered_2xx": measured["bodies_answered_2xx"],
        "bodies_scheduled": measured["bodies_scheduled"],
        "post_p50_ms": post.get("p50_ms"),
        "post_p95_ms": post.get("p95_ms"),
        "post_p99_ms": post.get("p99_ms"),
        "post_p95_from_schedule_ms": measured["post_from_schedule"].get("p95_ms"),
        "floor_empty_endpoint_p50_ms": floor.get("p50_ms"),
        "floor_empty_endpoint_p95_ms": floor.get("p95_ms"),
        "bodies_per_transaction": kept["rows_per_transaction"],
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
        "devices_list_ms": measured["devices_list"]["median_ms"],
        "cpu_s": {k: v for k, v in measured["cpu"].items() if k.endswith("_s")},
        "machine_busy_share": measured["cpu"]["machine_busy_share"],
        "targets": TARGETS,
    }
    write_report(args.out, summary, console, load=measured, kept=kept, size=size, steps=steps)


if __name__ == "__main__":
    main()
