"""The ``vbatt`` command: everything a DAG does can be run and debugged by hand."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.markup import escape
from rich.table import Table

from vbatt.console import console, err
from vbatt.ingest.csv_inputs import InputFileError

EXIT_BAD_INPUT = 2


def _warehouse(args: argparse.Namespace) -> int:
    from vbatt.settings import get_settings
    from vbatt.warehouse import embedded

    settings = get_settings()
    if args.action in ("backup", "restore"):
        return _warehouse_backup(args)
    if args.action == "psql":
        return _warehouse_psql(args)
    if args.action == "url":
        print(embedded.warehouse_url(start_embedded=not settings.embedded or embedded.is_running()))
        return 0
    if not settings.embedded:
        console.print(
            f"WAREHOUSE_URL is set: the warehouse is external ({args.action} does nothing)"
        )
        return 0
    if args.action == "up":
        url = embedded.start()
        from vbatt.warehouse.db import get_engine
        from vbatt.warehouse.migrate import migrate

        applied = migrate(get_engine(url))
        console.print(f"warehouse running in {settings.warehouse_dir}")
        if applied:
            console.print(f"migrations applied: {', '.join(applied)}")
        console.print(f"url: {url}")
    elif args.action == "down":
        stopped = embedded.stop()
        console.print("warehouse stopped" if stopped else "warehouse was not running")
    elif args.action == "status":
        running = embedded.is_running()
        console.print(
            f"warehouse in {settings.warehouse_dir}: {'running' if running else 'stopped'}"
        )
        return 0 if running else 1
    return 0


def _warehouse_psql(args: argparse.Namespace) -> int:
    from vbatt.warehouse.backup import BackupError
    from vbatt.warehouse.embedded import warehouse_url
    from vbatt.warehouse.psql import run_psql

    try:
        return run_psql(warehouse_url(), Path(args.file) if args.file else None)
    except BackupError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        return 1


def _warehouse_backup(args: argparse.Namespace) -> int:
    from vbatt.settings import get_settings
    from vbatt.warehouse import backup
    from vbatt.warehouse.embedded import warehouse_url

    url = warehouse_url()
    try:
        if args.action == "backup":
            target = Path(args.file) if args.file else None
            target = target or backup.default_backup_file(get_settings().backup_dir)
            with console.status(f"dumping the warehouse to {target}"):
                backup.backup(url, target)
            console.print(f"backup written: {target} ({target.stat().st_size:,} bytes)")
        else:
            if not args.file:
                raise ValueError("vbatt warehouse restore FILE: which backup to restore?")
            with console.status(f"restoring {args.file}"):
                backup.restore(url, Path(args.file))
            console.print(f"restored {args.file}; run the ledger (or `vbatt dbt run`) to go on")
    except backup.BackupError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        return 1
    return 0


def _summary_table(rows: list[dict]) -> Table:
    table = Table(title="Battery summary (kWh)")
    for column in (
        "battery",
        "capacity",
        "intervals",
        "estimated",
        "charged",
        "discharged",
        "overflow",
        "shortfall",
        "forfeited",
        "level",
    ):
        table.add_column(column, justify="left" if column == "battery" else "right")
    for r in rows:
        capacity = "unlimited" if r["capacity_kwh"] == 0 else f"{r['capacity_kwh']:.1f}"
        table.add_row(
            escape(r["battery_id"]),  # a cell is markup: an id as written, not as a tag
            capacity,
            f"{r['intervals']:,}",
            f"{r['estimated_intervals']:,}",
            *(
                f"{r[c]:.3f}"
                for c in (
                    "charged_total_kwh",
                    "discharged_total_kwh",
                    "overflow_total_kwh",
                    "shortfall_total_kwh",
                    "forfeited_total_kwh",
                    "level_kwh",
                )
            ),
        )
    return table


def _simulate(args: argparse.Namespace) -> int:
    from vbatt.ingest.csv_inputs import require_file
    from vbatt.ledger.simulate import simulate
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.embedded import warehouse_url

    # before the warehouse starts and a schema is made: a folder or a missing file is
    # said at once, not after the readings are loaded
    require_file(Path(args.readings))
    require_file(Path(args.batteries))
    with console.status("starting") as status:

        def step(message: str) -> None:
            status.update(message)
            console.log(message)

        url = warehouse_url()
        result = simulate(
            get_engine(url),
            url,
            Path(args.readings),
            Path(args.batteries),
            Path(args.out),
            step=step,
            keep_schema=args.keep_schema,
            slices=args.slices,
        )
    console.print(_summary_table(result.summary))
    console.print(f"wrote {result.intervals_csv} and {result.daily_csv}", markup=False)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.migrate import migrate

    applied = migrate(get_engine())
    console.print(f"applied: {', '.join(applied)}" if applied else "raw layer is up to date")
    return 0


def _dbt(args: argparse.Namespace) -> int:
    from vbatt.ledger.dbt_runner import run_dbt
    from vbatt.warehouse.embedded import warehouse_url

    run_dbt(args.dbt_args, url=warehouse_url(), capture=False)
    return 0


def _ingest(args: argparse.Namespace) -> int:
    """Each file on its own: one that is refused (or cannot be read) is said and counted,
    and the files after it are still loaded; exit 2 at the end if any was refused. Text
    from a file (a warning quoting it, a name) is printed as written, never as markup."""
    from vbatt.ingest.load import FileOutcome, ingest_file
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.migrate import migrate

    engine = get_engine()
    migrate(engine)
    refused = 0
    for name in args.files:
        try:
            outcome = ingest_file(engine, Path(name))
        except (OSError, ValueError) as exc:  # read as it went: nothing of it committed
            why = f"{exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
            outcome = FileOutcome(Path(name), status="refused", reason=why)
        for warning in outcome.warnings:
            console.print(
                f"[yellow]{escape(name)}: warning: {escape(warning)}[/yellow]", highlight=False
            )
        report = outcome.report()
        if outcome.status == "refused":
            refused += 1
            err.print(f"[red]{escape(report[0])}[/red]", highlight=False)
            continue
        for line in report:
            console.print(escape(line), highlight=False)
    return EXIT_BAD_INPUT if refused else 0


def _batteries(args: argparse.Namespace) -> int:
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.migrate import migrate

    engine = get_engine()
    if args.args[0] == "history" and len(args.args) == 2:
        migrate(engine)
        return _battery_history(engine, args.args[1])
    if len(args.args) != 1:
        raise ValueError("vbatt batteries FILE.csv, or vbatt batteries history BATTERY_ID")
    return _import_batteries(engine, Path(args.args[0]), args)


def _import_batteries(engine, path: Path, args: argparse.Namespace) -> int:
    import getpass

    from vbatt.ingest.csv_inputs import read_batteries_csv
    from vbatt.warehouse.loader import record_batteries
    from vbatt.warehouse.migrate import migrate

    batteries = read_batteries_csv(path)
    migrate(engine)
    recorded = record_batteries(
        engine,
        batteries,
        recorded_by=f"cli:{getpass.getuser()}",
        reason=args.reason or f"vbatt batteries {path.name}",
        backdate=args.backdate,
    )
    console.print(f"{path}: {recorded.summary}", markup=False)
    if recorded.summary.created or recorded.summary.versions or recorded.summary.end_dates:
        console.print("the next ledger run picks up the changes")
    return 0


def _battery_history(engine, battery_id: str) -> int:
    from vbatt.warehouse.versions import end_date_history, get_battery, version_history

    with engine.connect() as conn:
        battery = get_battery(conn, battery_id)
        records = version_history(conn, battery_id)
        ends = end_date_history(conn, battery_id)
    console.print(
        f"battery {battery_id}: partner {battery['partner_id']}, customer"
        f" {battery['customer_id']}, start {battery['start_date']}, end"
        f" {battery['end_date'] or 'none'}, timezone {battery['timezone']}, initial level"
        f" {battery['initial_level_kwh']:g} kWh",
        markup=False,  # ids and names as written, not as markup
    )
    until = {v["record_id"]: v["valid_until"] for v in battery["versions"]}
    table = Table(title="versions (a superseded record is kept, struck through)")
    for column in (
        "valid_from",
        "until",
        "name",
        "meter_id",
        "capacity kWh",
        "reset",
        "recorded",
        "by",
        "reason",
    ):
        table.add_column(column)
    for r in records:
        style = None if r["in_force"] else "strike dim"
        table.add_row(
            str(r["valid_from"]),
            str(until.get(r["record_id"]) or "") if r["in_force"] else "superseded",
            escape(r["name"]),  # cells are markup: what people typed is escaped
            escape(r["meter_id"]),
            f"{r['capacity_kwh']:g}" + (" (unlimited)" if r["capacity_kwh"] == 0 else ""),
            f"{r['reset_date']} {r['reset_repeat']}" if r["reset_date"] else "none",
            f"{r['recorded_at']:%Y-%m-%d %H:%M:%S}" if r["recorded_at"] else "",
            escape(r["recorded_by"] or ""),
            escape(r["reason"] or ""),
            style=style,
        )
    console.print(table)
    for e in ends:
        console.print(
            f"end_date {e['end_date'] or 'cleared'}: {e['recorded_at']:%Y-%m-%d %H:%M:%S}"
            f" by {e['recorded_by']}" + (f" ({e['reason']})" if e["reason"] else ""),
            markup=False,
        )
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from vbatt.ledger.dbt_runner import run_dbt
    from vbatt.orchestration.pipeline import touch_for_rebuild
    from vbatt.warehouse.embedded import warehouse_url

    url = warehouse_url()
    if args.full:
        console.log("rebuilding every model from the raw layer (dbt run --full-refresh)")
        run_dbt(["run", "--full-refresh"], url=url, capture=False)
        return 0
    since = datetime.combine(args.since, time(0), tzinfo=UTC)
    touched = touch_for_rebuild(url, since, args.battery)
    console.log(f"{touched:,} rows marked for recomputation from {since.isoformat()}")
    run_dbt(["run"], url=url, capture=False)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig
    from vbatt.orchestration.pipeline import ingest_window
    from vbatt.settings import smartme_credentials
    from vbatt.warehouse.embedded import warehouse_url

    start = args.start.astimezone(UTC)
    end = args.end.astimezone(UTC)
    with SmartMeClient(SmartMeConfig(**smartme_credentials())) as client:
        result = ingest_window(warehouse_url(), client, start, end)
    console.print(f"{result['meters']} meters, {result['new_readings']} new readings")
    return 0


def _export(args: argparse.Namespace) -> int:
    from vbatt.exports.delivery import pending
    from vbatt.exports.gate import export_gate
    from vbatt.exports.partners import get_partner
    from vbatt.exports.period import parse_period
    from vbatt.exports.run import export_partner
    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.embedded import warehouse_url
    from vbatt.warehouse.migrate import migrate

    settings = get_settings()
    partner = get_partner(settings.partners_dir, args.partner)
    period = parse_period(args.period, partner.timezone)
    if period.end_utc > datetime.now(UTC) and not args.unfinished:
        ends = period.end_utc.astimezone(ZoneInfo(partner.timezone))
        err.print(
            f"period {period.label} has not ended (it ends {ends:%Y-%m-%d %H:%M} {partner.timezone}):"
            " its files would hold part of it, and the rest would come as a correction."
            " daily_settlement issues it once it has ended; to issue it now, add --unfinished",
            markup=False,
            highlight=False,
        )
        return 2
    engine = get_engine()
    migrate(engine)
    outbox = Path(args.out) if args.out else settings.outbox_dir
    # files waiting from earlier runs are delivered with this period's: their periods,
    # so that the delivery line names what it sent
    waiting = {} if args.no_delivery else _waiting_periods(pending(engine, partner.partner_id))
    results, delivered = export_partner(
        engine,
        partner,
        period,
        outbox,
        formats=args.format,
        send=not args.no_delivery,
        gate=export_gate(warehouse_url()),
    )
    for r in results:
        files = escape(", ".join(str(p) for p in r.files))
        line = {
            "new": f"issued version 1 ({escape(str(r.reference))}), {r.rows:,} values: {files}",
            "correction": f"data changed: correction v{r.version}"
            f" ({escape(str(r.reference))}) issued: {files}",
            "unchanged": f"already issued as v{r.version} ({escape(str(r.reference))}),"
            f" files unchanged: {files}",
            "blocked": f"[red]blocked, nothing issued: {escape(r.reason)}[/red]",
            "empty": "[yellow]no computed intervals in the period, nothing issued[/yellow]",
        }[r.status]
        console.print(
            f"{escape(partner.partner_id)} {escape(r.format_key)} {r.period_label}: {line}",
            highlight=False,
        )
        for p in r.files:
            waiting.setdefault(Path(p).name, r.period_label)
    if delivered:
        console.print(_delivered_line(delivered, waiting, period.label), markup=False)
    return 1 if any(r.status == "blocked" for r in results) else 0


def _waiting_periods(rows: list[dict]) -> dict[str, str]:
    """File name -> period label of the files a partner has waiting (``pending``)."""
    return {r["file_name"]: r["period_label"] for r in rows}


def _delivered_line(delivered: list[str], periods: dict[str, str], asked: str) -> str:
    """What was delivered, by period, each file named: a run for a period with nothing
    to issue still delivers what earlier runs left waiting, and a bare count read as if
    this period had been sent."""
    by_period: dict[str, list[str]] = {}
    for name in delivered:
        by_period.setdefault(periods.get(name, "period unknown"), []).append(name)
    parts = [
        f"{label}{'' if label == asked else ' (waiting from an earlier run)'}: {', '.join(names)}"
        for label, names in sorted(by_period.items())
    ]
    return f"delivered {len(delivered)} file(s): " + "; ".join(parts)


def _serve(args: argparse.Namespace) -> int:
    from vbatt.api import server

    if args.stop:
        pid = server.stop_detached()
        console.print(f"API (pid {pid}) stopped" if pid else "no detached API was running")
        for name, companion in server.stop_companions():
            console.print(f"{name} (pid {companion}) stopped")
        return 0
    if args.detach:
        try:
            url, pid = server.start_detached(args.host, args.port, workers=args.workers)
        except RuntimeError as exc:
            err.print(f"[red]{exc}[/red]")
            return server.CANNOT_START
        console.print(f"API running at {url} (pid {pid}); stop it with: vbatt serve --stop")
        return 0
    console.print(f"API and dashboard at http://{args.host}:{args.port}/dashboard (Ctrl-C stops)")
    try:
        server.run(args.host, args.port, workers=args.workers)
    except server.CannotStart as exc:
        err.print(f"[red]{exc}[/red]")
        return server.CANNOT_START
    return 0


def _keys(args: argparse.Namespace) -> int:
    from vbatt.api.keys import Principal, create_key, owner_unknown, revoke_key
    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.migrate import migrate

    engine = get_engine()
    migrate(engine)
    if args.action == "revoke":
        n = revoke_key(engine, args.prefix)
        console.print(f"{n} key(s) with prefix {args.prefix} revoked")
        return 0 if n else 1
    if args.write and args.customer:
        err.print("[red]a customer's key is always read-only: --write needs a partner's key[/red]")
        return 2
    who = Principal(args.partner, args.customer, can_write=args.write)
    created = create_key(engine, who, label=args.label or "")
    scope = "read and write" if args.write else "read-only"
    console.print(
        f"API key for {created.principal.label}, {scope} (shown once, only its hash is stored):"
    )
    print(created.key)
    partner_files = {path.stem for path in get_settings().partners_dir.glob("*.yaml")}
    doubt = owner_unknown(engine, who, partner_files)
    if doubt:
        err.print(
            f"note: {doubt}; the key sees nothing until it has one (a typo? then revoke it:"
            f" vbatt keys revoke {created.prefix})",
            markup=False,
            highlight=False,
        )
    return 0


def _slices(value: str) -> int:
    from vbatt.settings import positive_whole_number

    try:
        return positive_whole_number("--slices", value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _date(value: str) -> date:
    """An argparse type: a date, or the subcommand's own usage with what to write."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give a date as YYYY-MM-DD") from None


def _instant(value: str) -> datetime:
    """An argparse type: an ISO 8601 instant, or the subcommand's usage with an example."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give an instant as YYYY-MM-DDTHH:MMZ, e.g. 2026-11-01T00:00Z"
            " (or with an offset: 2026-11-01T00:00+01:00)"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vbatt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    wh = sub.add_parser("warehouse", help="the embedded PostgreSQL warehouse")
    wh.add_argument("action", choices=["up", "down", "status", "url", "psql", "backup", "restore"])
    wh.add_argument(
        "file",
        nargs="?",
        help="backup/restore: the dump file (pg_dump custom format);"
        " psql: a SQL file to run, stopping at its first error (else psql on the terminal)",
    )
    wh.set_defaults(func=_warehouse)

    mig = sub.add_parser("migrate", help="apply pending migrations of the raw layer")
    mig.set_defaults(func=_migrate)

    sim = sub.add_parser("simulate", help="compute batteries for a readings CSV, offline")
    sim.add_argument(
        "--readings", required=True, help="CSV: meter_id,timestamp,import_kwh,export_kwh"
    )
    sim.add_argument("--batteries", required=True, help="CSV of battery configurations")
    sim.add_argument(
        "--out", required=True, help="folder for battery_intervals.csv and battery_daily.csv"
    )
    sim.add_argument(
        "--keep-schema", action="store_true", help="keep the isolated schemas to query"
    )
    sim.add_argument(
        "--slices",
        type=_slices,
        help="dbt runs side by side, each for batteries that share no meter with the others"
        " (default: one per core, at most 4, from 1,000,000 readings on; 1: one run)",
    )
    sim.set_defaults(func=_simulate)

    ing = sub.add_parser(
        "ingest",
        help="load readings CSV, MSCONS or SDAT-CH files into the raw layer; prints what was"
        " used per register, ignored and quarantined",
    )
    ing.add_argument("files", nargs="+", help="files; each is loaded whole or refused")
    ing.set_defaults(func=_ingest)

    bat = sub.add_parser(
        "batteries",
        help="import battery configurations and versions (CSV), or: batteries history ID",
    )
    bat.add_argument(
        "args",
        nargs="+",
        metavar="FILE | history ID",
        help="a CSV with the columns of vbatt simulate (+ optional valid_from), or"
        " 'history' and a battery id to print its versions",
    )
    bat.add_argument(
        "--backdate",
        action="store_true",
        help="allow changes and new batteries that reach into periods already issued to the"
        " partner (those periods are issued again, the ones whose values change as corrections)",
    )
    bat.add_argument("--reason", help="why; recorded with each version")
    bat.set_defaults(func=_batteries)

    fetch = sub.add_parser("fetch", help="fetch a window from the smart-me cloud (SMARTME_* env)")
    fetch.add_argument(
        "--start", required=True, type=_instant, help="ISO instant, e.g. 2026-11-01T00:00Z"
    )
    fetch.add_argument("--end", required=True, type=_instant, help="ISO instant")
    fetch.set_defaults(func=_fetch)

    reb = sub.add_parser("rebuild", help="recompute the ledger from a date")
    reb.add_argument(
        "--from",
        dest="since",
        type=_date,
        help="UTC date to recompute from (YYYY-MM-DD)",
    )
    reb.add_argument("--battery", help="only the meter of this battery")
    reb.add_argument("--full", action="store_true", help="rebuild every model from raw")
    # its own usage for "needs --from or --full" (checked in main, after parsing)
    reb.set_defaults(func=_rebuild, usage_error=reb.error)

    exp = sub.add_parser("export", help="issue a partner's files for a day or month")
    exp.add_argument("--partner", required=True, help="a partner of partners/<id>.yaml")
    exp.add_argument("--period", required=True, help="a local day YYYY-MM-DD or a month YYYY-MM")
    exp.add_argument(
        "--format",
        action="append",
        help="csv, mscons, ise or sdat (or an entry's name); repeat for several; default all",
    )
    exp.add_argument("--out", help="outbox folder (default: outbox/ or VBATT_OUTBOX_DIR)")
    exp.add_argument("--no-delivery", action="store_true", help="issue files but send nothing")
    exp.add_argument(
        "--unfinished",
        action="store_true",
        help="issue a period that has not ended (what is known now; the rest as a correction)",
    )
    exp.set_defaults(func=_export)

    srv = sub.add_parser("serve", help="the read API and dashboard over the marts")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8800)
    srv.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (default 1; see docs/realtime.md)",
    )
    how = srv.add_mutually_exclusive_group()
    how.add_argument("--detach", action="store_true", help="run in the background (pid file)")
    how.add_argument("--stop", action="store_true", help="stop the detached API")
    srv.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="API keys for partners and customers")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    kc = keys_sub.add_parser("create", help="create a key; it is printed once")
    kc.add_argument("--partner", required=True, help="sees all batteries of this partner_id")
    kc.add_argument(
        "--customer", help="with --partner: sees only this customer's batteries of the partner"
    )
    kc.add_argument("--label", help="a note for people, e.g. who got the key")
    kc.add_argument(
        "--write",
        action="store_true",
        help="the partner's key may also add and change batteries (default: read-only)",
    )
    kr = keys_sub.add_parser("revoke", help="revoke a key by its prefix (vb_ + 8 characters)")
    kr.add_argument("prefix")
    keys.set_defaults(func=_keys)

    from vbatt.quality.commands import add_parsers as add_quality_parsers

    add_quality_parsers(sub)  # vbatt quality CHECKPOINT, vbatt quarantine list|release

    from vbatt.ingest.realtime_commands import add_parsers as add_realtime_parsers

    add_realtime_parsers(sub)  # vbatt smartme realtime register|list|delete|compact

    dbt = sub.add_parser("dbt", help="run dbt against the warehouse, e.g. vbatt dbt build")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    dbt.set_defaults(func=_dbt)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "rebuild" and not (args.full or args.since):
        args.usage_error("rebuild needs --from DATE or --full")
    # the messages quote what people wrote (a file's values, an id): escaped, so that
    # "[/b]" prints as written instead of failing as rich markup
    try:
        return args.func(args)
    except InputFileError as exc:
        err.print(
            f"[red]The input was refused; nothing was written.[/red]\n{escape(str(exc))}",
            highlight=False,
        )
        return EXIT_BAD_INPUT
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if exc.filename is None:  # not a path someone gave
            raise
        err.print(f"[red]{escape(f'{exc.strerror}: {exc.filename}')}[/red]", highlight=False)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - a person reads this, not a traceback
        from vbatt.ledger.dbt_runner import DbtError
        from vbatt.warehouse.embedded import WarehouseError

        if isinstance(exc, DbtError | WarehouseError):
            err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
