"""``python -m vbatt.simulator``: run the simulated smart-me cloud on 127.0.0.1.

The first stdout line is ``vbatt-simulator listening on http://127.0.0.1:PORT`` so a parent
process (tests, the demo) can start it with ``--port 0`` and read the port it got.
"""

from __future__ import annotations

import argparse
import socket
import sys

from vbatt.simulator.app import Credentials, SimState, create_app
from vbatt.simulator.faults import Faults, parse_counter_drop

READY_PREFIX = "vbatt-simulator listening on "


def build_parser() -> argparse.ArgumentParser:
    defaults, no_faults = Credentials(), Faults()
    p = argparse.ArgumentParser(prog="python -m vbatt.simulator", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 only inside a container network (docker compose)",
    )
    p.add_argument("--meters", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    auth = p.add_argument_group("credentials (any one of them is accepted)")
    auth.add_argument("--api-key", default=defaults.api_key)
    auth.add_argument("--user", default=defaults.user)
    auth.add_argument("--password", default=defaults.password)
    auth.add_argument("--client-id", default=defaults.client_id)
    auth.add_argument("--client-secret", default=defaults.client_secret)
    auth.add_argument("--token-ttl", type=int, default=defaults.token_ttl_s, help="seconds")
    f = p.add_argument_group("faults (also switchable at run time: POST /_sim/faults)")
    f.add_argument("--latency-ms", type=int, default=no_faults.latency_ms)
    f.add_argument("--rate-429", type=float, default=0.0)
    f.add_argument("--retry-after", type=int, default=no_faults.retry_after_s, help="seconds")
    f.add_argument("--retry-after-http-date", action="store_true")
    f.add_argument("--rate-500", type=float, default=0.0)
    f.add_argument("--rate-malformed", type=float, default=0.0)
    f.add_argument("--hang-rate", type=float, default=0.0, help="answers that come too late")
    f.add_argument("--hang-ms", type=int, default=no_faults.hang_ms)
    f.add_argument("--rate-missing", type=float, default=0.0)
    f.add_argument("--rate-duplicate", type=float, default=0.0)
    f.add_argument("--rate-out-of-order", type=float, default=0.0)
    f.add_argument(
        "--counter-drop",
        action="append",
        default=[],
        metavar="METER@INSTANT",
        help="meter exchange, e.g. SIM-0002@2025-06-10T12:00:00Z (repeatable)",
    )
    f.add_argument("--max-consecutive-faults", type=int, default=no_faults.max_consecutive_faults)
    f.add_argument(
        "--push-period",
        type=float,
        default=no_faults.push_period_s,
        help="seconds between realtime pushes to registered URLs",
    )
    f.add_argument("--push-rate-bad-auth", type=float, default=0.0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    faults = Faults(
        latency_ms=args.latency_ms,
        rate_429=args.rate_429,
        retry_after_s=args.retry_after,
        retry_after_http_date=args.retry_after_http_date,
        rate_500=args.rate_500,
        rate_malformed=args.rate_malformed,
        hang_rate=args.hang_rate,
        hang_ms=args.hang_ms,
        rate_missing=args.rate_missing,
        rate_duplicate=args.rate_duplicate,
        rate_out_of_order=args.rate_out_of_order,
        counter_drop=dict(parse_counter_drop(s) for s in args.counter_drop),
        max_consecutive_faults=args.max_consecutive_faults,
        push_period_s=args.push_period,
        push_rate_bad_auth=args.push_rate_bad_auth,
    )
    creds = Credentials(
        api_key=args.api_key,
        user=args.user,
        password=args.password,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl_s=args.token_ttl,
    )
    state = SimState(seed=args.seed, meters=args.meters, creds=creds, faults=faults)

    import uvicorn  # late: --help should not pay for it

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))  # a test double: loopback unless told otherwise
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(state), log_level="warning", access_log=False, lifespan="off"
    )
    print(f"{READY_PREFIX}http://{args.host}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
