"""The write API for partners: create a battery, add a version, set its end_date, and list
its versions (``docs/api.md``, "Writing").

The rules are ``vbatt.warehouse.versions``'; this module only turns HTTP into its calls and
its refusals into statuses: a key that may not see the battery 404 (as for reads), a
read-only key 403, a clash 409 (with a code saying which), bad fields 422 naming each.
Every write runs through ``audit.AuditLog.perform``: one transaction, audited, idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from vbatt.api.access import Conn, NotFound, Warehouse, Who, visible_timezone
from vbatt.api.audit import AuditLog, Write
from vbatt.api.bodies import (
    BatteryIn,
    EndDateIn,
    NotJson,
    Problems,
    VersionIn,
    battery_body,
    end_date_body,
    parse_json,
    version_body,
)
from vbatt.api.errors import Refused, invalid
from vbatt.api.keys import Principal
from vbatt.api.models import Battery
from vbatt.api.queries import Marts
from vbatt.battery_config import MAX_LENGTHS, value_problem
from vbatt.warehouse import versions

router = APIRouter(prefix="/v1", tags=["writing"])

# A battery's body is well under 2 kB (text fields are bounded, battery_config.MAX_LENGTHS);
# without a bound a 10 MB body is read into memory, parsed and stored in the audit log.
MAX_BODY_BYTES = 64 * 1024
# a version record's internal side: partners see who recorded it, why, and its record id;
# a customer's key sees the terms only
INTERNAL_FIELDS = ("record_id", "recorded_by", "reason")


class TooLarge:
    """A body over MAX_BODY_BYTES (not read further): refused with 413, audited."""


async def json_body(request: Request) -> Any:
    """The request's JSON: None when empty, ``NotJson`` when it is none (refused as not an
    object), ``TooLarge`` past MAX_BODY_BYTES (read no further than that)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return TooLarge()
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            return TooLarge()
    return parse_json(bytes(raw))


Body = Annotated[Any, Depends(json_body)]


def _sent(body: Any) -> Any:
    """The body as the audit log keeps it: parsed JSON, or None when there was none."""
    return None if isinstance(body, NotJson | TooLarge) else body


def _readable(body: Any) -> None:
    if isinstance(body, TooLarge):
        raise Refused(
            413,
            f"The body is larger than {MAX_BODY_BYTES // 1024} kB; a battery or a change is"
            " a small JSON object (see the field limits in the API documentation).",
            code="body_too_large",
        )


def _engine(request: Request) -> Engine:
    writer = request.app.state.writer
    if writer is None:
        raise Refused(503, "This API was started read-only (no warehouse URL to write to).")
    return writer


def _audit(request: Request) -> AuditLog:
    return request.app.state.audit


def _body_schema(model: type) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def recorded_by(who: Principal) -> str:
    return f"api key {who.key_prefix} ({who.label})"


def _recorded(who: Principal, options: dict, m: Marts) -> dict:
    """The keywords each write of versions takes from the request alike: who records it,
    why, whether it may reach into periods already issued, and the warehouse's schema."""
    return {
        "recorded_by": recorded_by(who),
        "reason": options["reason"],
        "backdate": options["backdate"],
        "raw_schema": m.raw,
    }


def _may_write(who: Principal) -> None:
    if not who.can_write:
        raise Refused(
            403,
            "This key is read-only; a partner's key created with --write may change batteries.",
            code="read_only_key",
        )


def _refusal(exc: versions.VersionError) -> Exception:
    if isinstance(exc, versions.BatteryInvalid):
        return invalid(dict(exc.problems))
    if isinstance(exc, versions.BatteryNotFound):
        return NotFound()
    if isinstance(exc, versions.BatteryExists):
        return Refused(409, str(exc), code="battery_exists")
    if isinstance(exc, versions.VersionExists):  # its hint is for Python callers: ours
        return Refused(
            409,
            f'{exc.detail}. Send "replace": true to supersede it (the old record is kept).',
            code="version_exists",
        )
    if isinstance(exc, versions.BackdatedChange):  # its hint is for the CLI: ours
        return Refused(
            409,
            f'{exc.detail}. Send "backdate": true to record it anyway; the partner\'s issued'
            " periods from then on are issued again (those whose values change as corrections).",
            code="backdated",
        )
    return Refused(422, str(exc), code="refused")


class _DryRun(Exception):
    """Rolls back a call made only to collect its problems."""


def _call(conn: Connection, call: Callable[[], Any], mine: Problems, body: Any) -> Any:
    """``call()``; with problems of our own, a rolled-back try collects versions' problems
    with the other fields too, so one answer names every bad field (not for a body that
    is no object: it has no fields)."""
    if not mine:
        try:
            return call()
        except versions.VersionError as exc:
            raise _refusal(exc) from None
    theirs: dict[str, str] = {}
    if isinstance(body, dict):
        try:
            with conn.begin_nested():
                call()
                raise _DryRun
        except versions.BatteryInvalid as exc:
            theirs = dict(exc.problems)
        except (_DryRun, versions.VersionError, TypeError, ValueError, SQLAlchemyError):
            pass  # only their field problems are wanted here
    raise invalid({**theirs, **mine})


def _check_meter(request: Request, meter_id: Any, problems: Problems) -> None:
    check = request.app.state.meter_check
    if check is None or not isinstance(meter_id, str) or not meter_id or "meter_id" in problems:
        return
    if value_problem("meter_id", meter_id.strip()):  # versions names it; the cloud is not asked
        return
    problem = check(meter_id)
    if problem:
        problems["meter_id"] = problem


def _own_battery(m: Marts, conn: Connection, who: Principal, battery_id: str) -> None:
    """404 unless ``who`` sees the battery (before anything else), then 403 unless it writes."""
    if m.visible(conn, who, battery_id) is None:
        raise NotFound()
    _may_write(who)


def _battery(m: Marts, conn: Connection, who: Principal, battery_id: str) -> Battery:
    b = m.battery(conn, who, battery_id)
    if b is None:
        raise NotFound()
    return b


@router.post(
    "/batteries",
    status_code=201,
    response_model=Battery,
    responses={403: {}, 409: {}, 422: {}},
    openapi_extra=_body_schema(BatteryIn),
)
def create_battery(request: Request, m: Warehouse, who: Who, body: Body):
    """A new battery of the key's partner; its first version runs from start_date."""
    bid = body.get("battery_id") if isinstance(body, dict) else None
    # as stored (versions strips text), and no longer than an id may be
    bid = bid.strip()[: MAX_LENGTHS["battery_id"]] if isinstance(bid, str) else None
    write = Write(who, "create_battery", bid, _sent(body))

    def change(conn: Connection) -> tuple[int, Any]:
        _may_write(who)
        _readable(body)
        battery, options, problems = battery_body(body, who.partner_id)
        _check_meter(request, battery.get("meter_id"), problems)
        created = _call(
            conn,
            lambda: versions.create_battery(conn, battery, **_recorded(who, options, m)),
            problems,
            body,
        )
        # read back by the id stored: " b-1 " is stored (and addressed) as "b-1"
        return 201, _battery(m, conn, who, created["battery_id"]).model_dump()

    return _audit(request).perform(_engine(request), request, write, change)


@router.post(
    "/batteries/{id}/versions",
    status_code=201,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
    openapi_extra=_body_schema(VersionIn),
)
def add_version(id: str, request: Request, m: Warehouse, who: Who, body: Body):  # noqa: A002
    """New terms from valid_from on (fields left out carry over)."""
    write = Write(who, "add_version", id, _sent(body))

    def change(conn: Connection) -> tuple[int, Any]:
        _own_battery(m, conn, who, id)
        _readable(body)
        valid_from, changes, options, problems = version_body(body)
        _check_meter(request, changes.get("meter_id"), problems)
        version = _call(
            conn,
            lambda: versions.add_version(
                conn,
                id,
                valid_from,
                changes,
                replace=options["replace"],
                **_recorded(who, options, m),
            ),
            problems,
            body,
        )
        return 201, version

    return _audit(request).perform(_engine(request), request, write, change)


@router.patch(
    "/batteries/{id}",
    response_model=Battery,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
    openapi_extra=_body_schema(EndDateIn),
)
def set_end_date(id: str, request: Request, m: Warehouse, who: Who, body: Body):  # noqa: A002
    """Set, move or clear the battery's end_date (nothing else changes here)."""
    write = Write(who, "set_end_date", id, _sent(body))

    def change(conn: Connection) -> tuple[int, Any]:
        _own_battery(m, conn, who, id)
        _readable(body)
        end_date, options, problems = end_date_body(body)
        _call(
            conn,
            lambda: versions.set_end_date(conn, id, end_date, **_recorded(who, options, m)),
            problems,
            body,
        )
        return 200, _battery(m, conn, who, id).model_dump()

    return _audit(request).perform(_engine(request), request, write, change)


@router.get("/batteries/{id}/versions", responses={404: {}})
def list_versions(
    id: str,  # noqa: A002
    m: Warehouse,
    conn: Conn,
    who: Who,
    history: Annotated[
        bool, Query(description="every record, superseded ones too (in_force marks)")
    ] = False,
) -> dict:
    """The battery's versions in force, by valid_from, each with valid_until (read keys
    too); ``history=true``: every record ever made. A customer's key gets the terms
    without who recorded them, why and the record ids (the utility's and the partner's
    internal business)."""
    visible_timezone(m, conn, who, id)
    read = versions.version_history if history else versions.list_versions
    try:
        items = read(conn, id, raw_schema=m.raw)
    except versions.BatteryNotFound:  # removed (by hand) since visible_timezone found it
        raise NotFound() from None
    if who.customer_id is not None:
        items = [{k: v for k, v in item.items() if k not in INTERNAL_FIELDS} for item in items]
    return {"battery_id": id, "items": items}
