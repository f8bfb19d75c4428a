"""Running the API: in the foreground (``vbatt serve``) or detached with a pid file
(``vbatt serve --detach`` / ``--stop``), which is how ``make demo`` leaves it running."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import httpx

from vbatt.settings import get_settings

READY_TIMEOUT_S = 30.0
CANNOT_START = 3  # exit code of `vbatt serve` when a server cannot start


class CannotStart(RuntimeError):
    """The API could not start (address in use, a worker died at start): exit code 3."""


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any worker starts (all workers accept on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CannotStart(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _serve(sock: socket.socket, app_args: dict, log_level: str) -> bool:
    """One server process on the shared socket until it is told to stop; False if it did
    not start."""
    import uvicorn

    from vbatt.api.app import create_app

    config = uvicorn.Config(
        create_app(**app_args),
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=3,  # open live streams (SSE) never end by themselves
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return server.started


def run(
    host: str,
    port: int,
    *,
    url: str | None = None,
    marts_schema: str = "analytics_marts",
    raw_schema: str = "raw",
    log_level: str = "info",
    workers: int = 1,
) -> None:
    """Serve until interrupted, over ``url`` or the configured warehouse (WAREHOUSE_URL or
    the embedded one); the schemas are parameters for benchmarks over a throw-away one.

    ``workers`` > 1: that many processes, forked after the socket is bound, accept on it
    (the kernel hands each connection to one of them); each has its own app, pools and
    realtime writer, so one Python process's CPU is no longer the limit. Raises
    CannotStart when the socket cannot be bound or a worker fails at start."""
    from vbatt.api.meter_check import from_settings
    from vbatt.warehouse.embedded import warehouse_url

    if workers < 1:
        raise CannotStart(f"--workers must be at least 1, not {workers}")
    meter_check = from_settings()
    if meter_check is None:
        from vbatt.console import console

        console.print(
            "no smart-me cloud configured (SMARTME_API_KEY or SMARTME_USER): the write API"
            " does not check that house meters measure both directions"
        )
    app_args = {
        "url": url or warehouse_url(),
        "marts_schema": marts_schema,
        "raw_schema": raw_schema,
        "meter_check": meter_check,
    }
    sock = _listen(host, port)
    if workers == 1:
        if not _serve(sock, app_args, log_level):
            raise CannotStart(f"the API on {host}:{port} did not start (see the log above)")
        return
    _supervise(sock, app_args, log_level, workers)


def _supervise(sock: socket.socket, app_args: dict, log_level: str, workers: int) -> None:
    """Fork the workers, pass SIGTERM/SIGINT on to them and wait; if one ends on its own
    the others are stopped too (a half-running API is not left behind)."""
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: serve, then leave without the parent's cleanup
            code = CANNOT_START
            try:
                code = 0 if _serve(sock, app_args, log_level) else CANNOT_START
            except BaseException:  # say why before leaving (os._exit skips the printing)
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    sock.close()
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        children.remove(pid)
        code = os.waitstatus_to_exitcode(status)
        if not stopping:  # a worker ended by itself: stop the rest
            failed = failed or code or CANNOT_START
            stop(signal.SIGTERM, None)
    if failed:
        raise CannotStart(f"a worker of the API ended with code {failed} (see the log above)")


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


def start_detached(
    host: str, port: int, env: dict[str, str] | None = None, *, workers: int = 1
) -> tuple[str, int]:
    """Start the API as a background process; return its URL and pid once it answers.
    ``env`` is added to the process's environment (e.g. the realtime receiver's credentials)."""
    url = f"http://{host}:{port}"
    if (pid := running_pid()) is not None:
        return _pid_file().read_text().split()[1], pid
    run_dir = get_settings().api_run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / "api.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbatt.api", "--host", host, "--port", str(port)]
        + ["--workers", str(workers)],
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
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    args = parser.parse_args(argv)
    try:
        run(
            args.host,
            args.port,
            url=args.warehouse_url,
            marts_schema=args.marts_schema,
            raw_schema=args.raw_schema,
            log_level=args.log_level,
            workers=args.workers,
        )
    except CannotStart as exc:
        print(f"vbatt serve: {exc}", file=sys.stderr)
        sys.exit(CANNOT_START)


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
