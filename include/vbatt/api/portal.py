"""The partner portal in the dashboard: the fleet summary on the partner page, the version
history on a battery page and, for a key with the write scope, the forms ("Add battery",
"Change from date ...", "End battery").

The forms post JSON to the write API (``writes.py``) from ``static/portal.js``, with the
page's CSRF token (``security.csrf_token``) in ``X-CSRF-Token``; the API's 422 names the bad
fields and the script shows each message next to its field. This module renders the
fragments the dashboard's pages include (templates ``portal_*.html``); it reads no marts.
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

from fastapi import Request
from sqlalchemy import Connection, text

from vbatt.api.access import COOKIE, key_from, marts
from vbatt.api.keys import Principal
from vbatt.api.security import csrf_token

TEMPLATES = Path(__file__).parent / "templates"
# What a 409 "backdated" offers in every form that can reach into periods already issued
# ("Add battery", "Change from date ...", "End battery"): static/portal.js shows it and
# sends "backdate": true once it is ticked. The periods are issued again at the next
# daily settlement; only those whose values change become corrections.
BACKDATE_CONFIRM = (
    '<label class="confirm" data-code="backdated" hidden><input type="checkbox"'
    ' name="backdate"> Include periods already issued to the partner: they are issued'
    " again at the next settlement, as corrections where the values change</label>"
)


def _fragment(name: str, **values: str) -> str:
    text_ = Template((TEMPLATES / f"{name}.html").read_text())
    return text_.substitute({k: v for k, v in values.items()})


def _csrf(request: Request) -> str:
    key = key_from(request.headers.get("authorization"), request.cookies.get(COOKIE))
    return csrf_token(key) if key else ""


def meter_options(request: Request, conn: Connection, who: Principal) -> str:
    """<option>s of the house meters the warehouse knows for the key's batteries (any
    version), for the meter fields' <datalist>: chosen from the list or typed."""
    raw = marts(request).raw
    rows = conn.execute(
        text(
            f"select b.meter_id from {raw}.batteries b where b.partner_id = :partner"
            f" union select v.meter_id from {raw}.battery_versions v"
            f" join {raw}.batteries b on b.battery_id = v.battery_id"
            " where b.partner_id = :partner order by 1"
        ),
        {"partner": who.partner_id},
    )
    return "".join(f'<option value="{html.escape(r.meter_id)}">' for r in rows)


def partner_section(request: Request, who: Principal) -> str:
    """The fleet summary (every key) and, for a write key, the "Add battery" link."""
    add = (
        '<a class="button" id="add-battery" href="/dashboard/batteries/new">Add battery</a>'
        if who.can_write
        else ""
    )
    return _fragment("portal_partner", csrf=html.escape(_csrf(request)), add=add)


def battery_section(request: Request, conn: Connection, who: Principal) -> str:
    """The version history (every key) and, for a write key, the change and end forms."""
    forms = ""
    if who.can_write:
        forms = _fragment(
            "portal_forms", meters=meter_options(request, conn, who), backdate=BACKDATE_CONFIRM
        )
    return _fragment(
        "portal_battery",
        csrf=html.escape(_csrf(request)),
        writes="true" if who.can_write else "false",
        forms=forms,
    )


def new_battery_values(request: Request, conn: Connection, who: Principal) -> dict[str, str]:
    """The raw (already escaped) values of the "Add battery" page."""
    return {
        "backdate": BACKDATE_CONFIRM,
        "csrf": html.escape(_csrf(request)),
        "meters": meter_options(request, conn, who),
        "partner": html.escape(who.partner_id),
        "who": html.escape(who.label),
    }
