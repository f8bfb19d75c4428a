"""``vbatt smartme realtime register|list|delete|compact``: the Realtime API from the CLI.

Registration calls smart-me (SMARTME_URL with SMARTME_API_KEY or SMARTME_USER and
SMARTME_PASSWORD, as ``vbatt fetch``) and hands it the receiver's credentials
(VBATT_REALTIME_USER / VBATT_REALTIME_PASSWORD), which smart-me sends with every push.
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

TYPE_NAMES = {0: "disabled", 1: "one meter", 2: "every device of the user"}


def add_parsers(sub) -> None:
    """``vbatt smartme realtime ...``, registered on ``vbatt``'s sub-parsers."""
    smartme = sub.add_parser("smartme", help="the smart-me cloud (SMARTME_* env)")
    smartme_sub = smartme.add_subparsers(dest="smartme_command", required=True)
    realtime = smartme_sub.add_parser("realtime", help="smart-me Realtime API pushes")
    action = realtime.add_subparsers(dest="action", required=True)

    reg = action.add_parser("register", help="have smart-me push new values to URL")
    reg.add_argument(
        "--url", required=True, help="this API's /smartme/realtime, as smart-me sees it"
    )
    one = reg.add_mutually_exclusive_group()
    one.add_argument("--meter", help="one meter (its smart-me id); default: every device")
    one.add_argument("--serial", help="one meter by its serial number")
    reg.set_defaults(func=register)

    listing = action.add_parser("list", help="the registrations smart-me has")
    listing.set_defaults(func=list_registrations)

    delete = action.add_parser("delete", help="remove a registration")
    delete.add_argument("id", help="the registration id (see list)")
    delete.set_defaults(func=delete_registration)

    compact = action.add_parser(
        "compact",
        help="drop full-resolution realtime days older than VBATT_REALTIME_RETENTION_DAYS"
        " (keeps what the ledger needs)",
    )
    compact.add_argument("--days", type=int, help="override VBATT_REALTIME_RETENTION_DAYS")
    compact.set_defaults(func=compact_days)


def _client():
    from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig
    from vbatt.settings import smartme_credentials

    return SmartMeClient(SmartMeConfig(**smartme_credentials()))


def register(args: argparse.Namespace) -> int:
    from vbatt.console import console
    from vbatt.ingest.smartme import register_realtime
    from vbatt.settings import get_settings

    settings = get_settings()
    if not (settings.realtime_user and settings.realtime_password):
        raise ValueError(
            "set VBATT_REALTIME_USER and VBATT_REALTIME_PASSWORD first: smart-me sends them"
            " with every push, and `vbatt serve` accepts pushes only with them"
        )
    if not args.url.startswith(("http://", "https://")):
        raise ValueError(f"--url must be an http(s) URL, not {args.url!r}")
    with _client() as client:
        made = register_realtime(
            client,
            args.url,
            username=settings.realtime_user,
            password=settings.realtime_password,
            meter_id=args.meter,
            serial_number=args.serial,
        )
    what = f"meter {args.meter or args.serial}" if (args.meter or args.serial) else "every device"
    ident = f" (registration {made.get('id')})" if made and made.get("id") else ""
    console.print(f"smart-me pushes {what} to {escape(args.url)}{ident}")
    return 0


def list_registrations(args: argparse.Namespace) -> int:
    from vbatt.console import console
    from vbatt.ingest.smartme import realtime_registrations

    with _client() as client:
        rows = realtime_registrations(client)
    if not rows:
        console.print("no realtime registrations")
        return 0
    table = Table("id", "type", "meter", "url", "user")
    for r in rows:
        kind = r.get("registrationType")
        table.add_row(
            escape(str(r.get("id") or "")),
            TYPE_NAMES.get(kind, str(kind)),
            escape(str(r.get("meterId") or r.get("serialNumber") or "")),
            escape(str(r.get("apiUrl") or "")),
            escape(str(r.get("basicAuthUsername") or "")),
        )
    console.print(table)
    return 0


def delete_registration(args: argparse.Namespace) -> int:
    from vbatt.console import console
    from vbatt.ingest.smartme import delete_realtime_registration

    with _client() as client:
        delete_realtime_registration(client, args.id)
    console.print(f"realtime registration {escape(args.id)} deleted")
    return 0


def compact_days(args: argparse.Namespace) -> int:
    from vbatt.console import console
    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.realtime import compact_old_days

    days = args.days if args.days is not None else get_settings().realtime_retention_days
    if days <= 0:
        console.print("VBATT_REALTIME_RETENTION_DAYS is 0: every realtime value is kept")
        return 0
    for line in compact_old_days(get_engine(), days):
        console.print(line)
    return 0
