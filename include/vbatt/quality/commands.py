"""``vbatt quality`` and ``vbatt quarantine``: the gates by hand (the DAGs call the same)."""

from __future__ import annotations

import argparse
from datetime import datetime

from rich.markup import escape
from rich.table import Table


def add_parsers(sub) -> None:
    """The two subcommands, registered on ``vbatt``'s sub-parsers."""
    quality = sub.add_parser("quality", help="run a data quality checkpoint (Great Expectations)")
    quality.add_argument("checkpoint", choices=["after_ingest", "after_ledger"])
    quality.set_defaults(func=run_quality)

    quarantine = sub.add_parser("quarantine", help="readings held back by the quality gates")
    action = quarantine.add_subparsers(dest="action", required=True)
    listing = action.add_parser("list", help="show the held readings")
    listing.add_argument("--all", action="store_true", help="released ones too")
    listing.set_defaults(func=list_held)
    rejected = action.add_parser(
        "rejected", help="values refused on input (bad rows of files, the cloud, pushes)"
    )
    rejected.add_argument("--load", type=int, help="only this load (vbatt ingest names it)")
    rejected.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    rejected.set_defaults(func=list_rejected)
    release = action.add_parser("release", help="re-admit held readings after a fix")
    release.add_argument("--meter", help="only this meter")
    release.add_argument("--reason", help="only those held by this expectation")
    release.add_argument("--from", dest="since", type=_instant, help="ISO instant, inclusive")
    release.add_argument("--to", dest="until", type=_instant, help="ISO instant, exclusive")
    release.set_defaults(func=release_held)


def _instant(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone: add Z or an offset")
    return ts


def run_quality(args: argparse.Namespace) -> int:
    from vbatt.console import console
    from vbatt.quality import run_checkpoint
    from vbatt.warehouse.embedded import warehouse_url

    result = run_checkpoint(args.checkpoint, warehouse_url())
    style = {"passed": "green", "warned": "yellow", "blocked": "red"}[result.outcome]
    console.print(f"[{style}]{escape(result.summary)}[/{style}]", highlight=False)
    return 1 if result.blocked else 0


def list_held(args: argparse.Namespace) -> int:
    from vbatt.console import console
    from vbatt.quality.quarantine import list_quarantine
    from vbatt.warehouse.embedded import warehouse_url

    rows = list_quarantine(warehouse_url(), include_released=args.all)
    if not rows:
        console.print(
            "no readings held by the quality gates (values refused on input:"
            " vbatt quarantine rejected)"
        )
        return 0
    table = Table(title=f"{len(rows)} quarantined readings")
    for column in (
        "meter",
        "timestamp (UTC)",
        "import kWh",
        "export kWh",
        "reason",
        "since",
        "released",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["meter_id"],
            r["ts"].isoformat(),
            f"{r['import_kwh']:g}",
            f"{r['export_kwh']:g}",
            r["reason"],
            f"{r['quarantined_at']:%Y-%m-%d %H:%M}",
            f"{r['released_at']:%Y-%m-%d %H:%M}" if r["released_at"] else "",
        )
    console.print(table)
    console.print("release after a fix: vbatt quarantine release [--meter M] [--reason R]")
    return 0


def list_rejected(args: argparse.Namespace) -> int:
    from vbatt.console import console
    from vbatt.quality.quarantine import list_rejected as rejected
    from vbatt.warehouse.embedded import warehouse_url

    rows = rejected(warehouse_url(), load_id=args.load, limit=args.limit)
    if not rows:
        console.print("no values refused" + (f" by load {args.load}" if args.load else ""))
        return 0
    table = Table(title=f"values refused on input (newest load first, at most {args.limit})")
    for column in ("load", "where", "meter", "reason", "as received"):
        table.add_column(column, overflow="fold")
    for r in rows:
        record = r["record"] if len(r["record"]) <= 80 else r["record"][:80] + "…"
        table.add_row(
            *(
                escape(str(v))
                for v in (
                    r["load_id"] or "",
                    r["location"],
                    r["meter_id"] or "",
                    r["reason"],
                    record,
                )
            )
        )
    console.print(table)
    console.print("they were never stored: correct them at the source and send them again")
    return 0


def release_held(args: argparse.Namespace) -> int:
    """Release, then run the ``after_ingest`` gate at once: a released reading is checked
    again before any ledger run can take it in, and one that still fails is held again."""
    from vbatt.console import console
    from vbatt.quality import run_checkpoint
    from vbatt.quality.quarantine import release
    from vbatt.warehouse.embedded import warehouse_url

    url = warehouse_url()
    released = release(
        url,
        meter_id=args.meter,
        reason=args.reason,
        since=args.since,
        until=args.until,
    )
    if not released:
        console.print("nothing to release (vbatt quarantine list shows what is held)")
        return 0
    console.print(f"{released} readings released; the after_ingest gate checks them again")
    result = run_checkpoint("after_ingest", url)
    style = {"passed": "green", "warned": "yellow", "blocked": "red"}[result.outcome]
    console.print(f"[{style}]{escape(result.summary)}[/{style}]", highlight=False)
    if result.quarantined:
        console.print(
            f"{result.quarantined} readings held (again): fix what the reasons name, then"
            " release them; vbatt quarantine list shows them"
        )
    console.print(
        "the next ledger run (battery_ledger, or vbatt dbt run) recomputes the meters of"
        " what passed from the first of those readings"
    )
    return 0
