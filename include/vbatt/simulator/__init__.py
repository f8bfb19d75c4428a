"""A simulated smart-me cloud for demos and tests; product code never imports it.

Start it as its own process (``python -m vbatt.simulator --port 0``) or from Python with
``start_in_background`` / ``running``; ``households.ground_truth`` tells what it serves.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

READY_PREFIX = "vbatt-simulator listening on "

__all__ = [
    "get_stats",
    "reset",
    "running",
    "set_faults",
    "start_detached",
    "start_in_background",
]


def _cli_args(
    meters: int, seed: int, credentials: Mapping[str, str | int], args: tuple[str, ...]
) -> list[str]:
    out = ["--port", "0", "--meters", str(meters), "--seed", str(seed)]
    for name, value in credentials.items():
        out += [f"--{name.replace('_', '-')}", str(value)]
    return out + list(args)


def _read_first_line(stream: IO[str], timeout: float) -> str | None:
    """First stdout line within ``timeout``; keeps draining so the child never blocks."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def start_in_background(
    *,
    meters: int = 5,
    seed: int = 42,
    faults: Mapping[str, Any] | None = None,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 30.0,
    **credentials: str | int,
) -> tuple[str, Callable[[], None]]:
    """Launch the simulator as a subprocess; return its base URL and a stop function.

    ``credentials`` are CLI options without dashes (``api_key=``, ``user=``, ``password=``,
    ``client_id=``, ``client_secret=``, ``token_ttl=``); ``faults`` is applied through
    ``POST /_sim/faults`` once the server answers.
    """
    stderr = tempfile.TemporaryFile(mode="w+")
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vbatt.simulator",
            *_cli_args(meters, seed, credentials, extra_args),
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        stderr.close()

    def fail(why: str) -> RuntimeError:
        stderr.seek(0)
        tail = stderr.read()[-2000:]
        stop()
        return RuntimeError(f"simulator did not start: {why}\n--- stderr ---\n{tail}")

    assert proc.stdout is not None
    deadline = time.monotonic() + ready_timeout
    line = _read_first_line(proc.stdout, ready_timeout)
    if line is None or not line.startswith(READY_PREFIX):
        raise fail(f"no '{READY_PREFIX}...' line within {ready_timeout:.0f}s (got {line!r})")
    url = line[len(READY_PREFIX) :].strip()
    while True:
        try:
            if httpx.get(f"{url}/_sim/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise fail(f"{url}/_sim/health not ready within {ready_timeout:.0f}s")
        time.sleep(0.05)
    if faults:
        set_faults(url, **faults)
    return url, stop


@contextmanager
def running(**kwargs: Any) -> Iterator[str]:
    """``with running(meters=3) as url: ...`` — ``start_in_background`` that cleans up."""
    url, stop = start_in_background(**kwargs)
    try:
        yield url
    finally:
        stop()


def set_faults(url: str, **faults: Any) -> dict[str, Any]:
    """Change fault switches at run time (unnamed ones keep their value)."""
    body = {
        k: ({m: t.isoformat() for m, t in v.items()} if k == "counter_drop" else v)
        for k, v in faults.items()
    }
    resp = httpx.post(f"{url}/_sim/faults", json=body, timeout=5)
    resp.raise_for_status()
    return resp.json()


def get_stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_sim/stats", timeout=5).json()


def reset(url: str) -> None:
    """Zero request counters and fault streaks, so a test's faults do not depend on order."""
    httpx.post(f"{url}/_sim/reset", timeout=5).raise_for_status()


def start_detached(
    run_dir: Path,
    *,
    meters: int,
    seed: int = 42,
    push_period_s: float = 1.0,
    ready_timeout: float = 30.0,
) -> tuple[str, int]:
    """Start the simulated cloud as a background process that outlives the caller (the demo
    leaves it pushing to the detached API); its pid goes to ``run_dir/smartme-cloud.pid``,
    which ``vbatt serve --stop`` (``make api-down``) ends with the API."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / "smartme-cloud.pid"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (run_dir / "smartme-cloud.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbatt.simulator", "--port", str(port)]
        + ["--meters", str(meters), "--seed", str(seed), "--push-period", str(push_period_s)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the shell of `make demo`
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulated cloud exited at start: see {log.name}")
        try:
            if httpx.get(f"{url}/_sim/health", timeout=1).status_code == 200:
                pid_file.write_text(f"{proc.pid} {url}\n")
                return url, proc.pid
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"the simulated cloud did not answer within {ready_timeout:.0f}s")
