"""Running the API: in the foreground (``vbatt serve``) or detached with a pid file
(``vbatt serve --detach`` / ``--stop``), which is how ``make demo`` leaves it running."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vbatt.settings import get_settings

READY_TIMEOUT_S = 30.0


def run(
    host: str,
    port: int,
    *,
    url: str | None = None,
    marts_schema: str = "analytics_marts",
    raw_schema: str = "raw",
    log_level: str = "info",
) -> None:
    """Serve until interrupted, over ``url`` or the configured warehouse (WAREHOUSE_URL or
    the embedded one); the schemas are parameters for benchmarks over a throw-away one."""
    import uvicorn

    from vbatt.api.app import create_app
    from vbatt.api.meter_check import from_settings
    from vbatt.warehouse.embedded import warehouse_url

    meter_check = from_settings()
    if meter_check is None:
        from vbatt.console import console

        console.print(
            "no smart-me cloud configured (SMARTME_API_KEY or SMARTME_USER): the write API"
            " does not check that house meters measure both directions"
        )
    app = create_app(
        url=url or warehouse_url(),
        marts_schema=marts_schema,
        raw_schema=raw_schema,
        meter_check=meter_check,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=3,  # open live streams (SSE) never end by themselves
    )


def _pid_file() -> Path:
    return get_settings().api_run_dir / "api.pid"


def running_pid() -> int | None:
    """The pid of a detached API that is still alive, else None (a stale file is removed)."""
    path = _pid_file()
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        path.unlink(missing_ok=True)
        return None
    return pid


def start_detached(host: str, port: int, env: dict[str, str] | None = None) -> tuple[str, int]:
    """Start the API as a background process; return its URL and pid once it answers.
    ``env`` is added to the process's environment (e.g. the realtime receiver's credentials)."""
    url = f"http://{host}:{port}"
    if (pid := running_pid()) is not None:
        return _pid_file().read_text().split()[1], pid
    run_dir = get_settings().api_run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / "api.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbatt.api", "--host", host, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the shell of `make demo`
        env=os.environ | (env or {}),
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited at start (code {proc.returncode}): see {log.name}")
        try:
            if httpx.get(f"{url}/api/Health", timeout=1).status_code == 200:
                _pid_file().write_text(f"{proc.pid} {url}\n")
                return url, proc.pid
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the API did not answer within {READY_TIMEOUT_S:.0f}s: see {log.name}")


def stop_detached() -> int | None:
    """Stop the detached API of this checkout; return its pid, or None if none ran."""
    pid = running_pid()
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    _pid_file().unlink(missing_ok=True)
    return pid


def stop_companions() -> list[tuple[str, int]]:
    """Stop the processes left running beside the detached API (each with a ``NAME.pid``
    in the run folder, e.g. the demo's simulated smart-me cloud that keeps pushing to it);
    return (name, pid) of those that were running."""
    stopped = []
    for pid_file in sorted(get_settings().api_run_dir.glob("*.pid")):
        if pid_file.name == _pid_file().name:
            continue
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            stopped.append((pid_file.stem, pid))
        except (ValueError, IndexError, ProcessLookupError):
            pass
        pid_file.unlink(missing_ok=True)
    return stopped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vbatt.api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--warehouse-url", help="default: WAREHOUSE_URL or the embedded one")
    parser.add_argument("--marts-schema", default="analytics_marts")
    parser.add_argument("--raw-schema", default="raw")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    run(
        args.host,
        args.port,
        url=args.warehouse_url,
        marts_schema=args.marts_schema,
        raw_schema=args.raw_schema,
        log_level=args.log_level,
    )


DEMO_KEY_LABEL = "make demo"


def demo_handoff(
    engine,
    console,
    *,
    host: str = "127.0.0.1",
    port: int = 8800,
    env: dict[str, str] | None = None,
    restart: bool = False,
) -> str:
    """End of `make demo`: a fresh key for partner ewa that may write, so the dashboard
    shows the portal's forms (the previous demo key is revoked), and the API left running
    detached, so the demo itself still terminates; ``restart`` replaces an API left by an
    earlier demo (so it runs with ``env``). Returns its URL."""
    from sqlalchemy import text

    from vbatt.api.keys import Principal, create_key

    with engine.begin() as conn:
        conn.execute(
            text(
                "update raw.api_keys set revoked_at = now()"
                " where label = :label and revoked_at is null"
            ),
            {"label": DEMO_KEY_LABEL},
        )
    created = create_key(engine, Principal("ewa", can_write=True), label=DEMO_KEY_LABEL)
    if restart:
        stop_detached()
    try:
        url, pid = start_detached(host, port, env)
    except RuntimeError as exc:
        console.print(f"[yellow]the API did not start ({exc}); start it with:[/yellow]")
        console.print(f"  .venv/bin/vbatt serve --port {port}")
        url = f"http://{host}:{port}"
    else:
        console.log(f"API and dashboard running at {url} (pid {pid}); `make api-down` stops it")
    console.print(
        f"\nDashboard of partner ewa: {url}/dashboard?key={created.key}\n"
        f"Demo API key (partner ewa, reads and writes; shown once): {created.key}\n"
        f'  curl -H "Authorization: ApiKey {created.key}" {url}/api/Devices\n'
    )
    return url
