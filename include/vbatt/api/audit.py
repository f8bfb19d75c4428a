"""Every write's record, and ``Idempotency-Key`` retries, in the warehouse (migration 0008).

A write runs in one transaction: the change itself in a savepoint, then the audit row and,
with an ``Idempotency-Key``, the answer kept for retries. A refused write rolls back its
savepoint only, so its audit row (with the status it got) is still committed. A retry with
the same key and the same request (method, path, canonical JSON body: keys in any order,
``5`` and ``5.0`` the same number) gets the first answer again and writes nothing; the same
key with another request is refused (422). Concurrent retries are serialised by an advisory
lock on (key, Idempotency-Key). Only successful answers are kept: a refused write created
nothing and may be retried as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, text

from vbatt.api.errors import Refused
from vbatt.api.keys import Principal
from vbatt.warehouse.migrate import check_schema_name

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class Write:
    """One write request: who, what, and the body as sent."""

    who: Principal
    action: str  # create_battery, add_version, set_end_date
    battery_id: str | None
    body: Any  # the parsed JSON (None when it was not JSON)


def _each_value(value: Any, change: Callable[[Any], Any]) -> Any:
    """Parsed JSON with ``change`` applied to every scalar, keys of objects included."""
    if isinstance(value, dict):
        return {change(k): _each_value(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_each_value(v, change) for v in value]
    return change(value)


def _whole_as_int(value: Any) -> Any:
    """A float of whole value as the int it equals: JSON has one kind of number, so ``5``
    and ``5.0`` are the same request, but Python's json reads them as int and float and
    writes them back differently. Booleans (an int in Python), strings and other values
    are left as they are, so ``true`` and ``1`` or ``"5"`` and ``5`` differ."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _sha256(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_hash(method: str, path: str, body: Any) -> str:
    """The fingerprint kept with an ``Idempotency-Key``: method, path and the body with
    keys sorted and numbers compared by value (:func:`_whole_as_int`)."""
    return _sha256(method, path, _each_value(body, _whole_as_int))


def same_request(stored: str, method: str, path: str, body: Any) -> bool:
    """Whether a fingerprint kept earlier is this request's. Keys stored before numbers were
    canonical hold the hash of the body as parsed (``5.0`` written as ``5.0``): a retry of
    the same bytes still matches that one (it differs from the canonical hash only for a
    body with a whole-valued float, and such keys are kept forever)."""
    return stored in (request_hash(method, path, body), _sha256(method, path, body))


def _storable(value: Any) -> Any:
    """A string storable in jsonb: PostgreSQL refuses ``\\u0000`` and unpaired surrogates,
    which Python's json writes without complaint."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return value


def jsonb_text(value: Any) -> str:
    """``value`` as JSON text for a jsonb column, never failing: an audit row must be
    written even for the request it records a refusal of. NaN and Infinity (not JSON) and
    anything else that cannot be written become a note with the start of its repr."""
    try:
        return json.dumps(_each_value(value, _storable), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return json.dumps({"not_storable_as_json": _storable(repr(value)[:1000])})


def _error_body(exc: HTTPException) -> dict:
    return getattr(exc, "body", None) or {"detail": exc.detail}


class AuditLog:
    """The audit and idempotency tables of one raw schema."""

    def __init__(self, raw_schema: str) -> None:
        self.raw = check_schema_name(raw_schema)

    def record(
        self,
        conn: Connection,
        request: Request,
        write: Write,
        status: int,
        outcome: Any,
        *,
        idempotency_key: str | None,
        replayed: bool = False,
    ) -> None:
        conn.execute(
            text(
                f"insert into {self.raw}.api_audit (key_id, key_prefix, partner_id, method,"
                " path, battery_id, action, request, status, outcome, idempotency_key, replayed)"
                " values (:key_id, :prefix, :partner, :method, :path, :battery, :action,"
                " cast(:request as jsonb), :status, cast(:outcome as jsonb), :idem, :replayed)"
            ),
            {
                "key_id": write.who.key_id,
                "prefix": write.who.key_prefix,
                "partner": write.who.partner_id,
                "method": request.method,
                "path": request.url.path,
                "battery": write.battery_id,
                "action": write.action,
                "request": jsonb_text(write.body),
                "status": status,
                "outcome": jsonb_text(jsonable_encoder(outcome)),
                "idem": idempotency_key,
                "replayed": replayed,
            },
        )

    def perform(
        self,
        engine: Engine,
        request: Request,
        write: Write,
        change: Callable[[Connection], tuple[int, Any]],
    ) -> JSONResponse:
        """Run ``change`` (status and body of the answer, or an HTTPException) as one audited,
        idempotent write."""
        idem = request.headers.get(IDEMPOTENCY_HEADER)
        if idem is not None and not 0 < len(idem) <= MAX_IDEMPOTENCY_KEY:
            raise HTTPException(
                422, f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )
        digest = request_hash(request.method, request.url.path, write.body)
        failure: HTTPException | None = None
        with engine.begin() as conn:
            if idem is not None:
                conn.execute(
                    text("select pg_advisory_xact_lock(hashtext(:k))"),
                    {"k": f"vbatt-idem:{write.who.key_id}:{idem}"},
                )
                prior = conn.execute(
                    text(
                        f"select request_hash, status, response from {self.raw}.api_idempotency"
                        " where key_id = :key_id and idempotency_key = :idem"
                    ),
                    {"key_id": write.who.key_id, "idem": idem},
                ).first()
                if prior is not None and not same_request(
                    prior.request_hash, request.method, request.url.path, write.body
                ):
                    failure = Refused(
                        422,
                        f"This {IDEMPOTENCY_HEADER} was used for another request; send a new"
                        " key for a new request.",
                        code="idempotency_key_reused",
                    )
                    self.record(
                        conn, request, write, 422, _error_body(failure), idempotency_key=idem
                    )
                elif prior is not None:
                    self.record(
                        conn,
                        request,
                        write,
                        prior.status,
                        prior.response,
                        idempotency_key=idem,
                        replayed=True,
                    )
                    return JSONResponse(
                        prior.response, prior.status, headers={"Idempotent-Replayed": "true"}
                    )
            if failure is None:
                try:
                    with conn.begin_nested():
                        status, body = change(conn)
                        body = jsonable_encoder(body)
                except HTTPException as exc:
                    failure = exc
                    self.record(
                        conn,
                        request,
                        write,
                        exc.status_code,
                        _error_body(exc),
                        idempotency_key=idem,
                    )
                else:
                    if idem is not None:
                        conn.execute(
                            text(
                                f"insert into {self.raw}.api_idempotency (key_id,"
                                " idempotency_key, request_hash, status, response) values"
                                " (:key_id, :idem, :hash, :status, cast(:response as jsonb))"
                            ),
                            {
                                "key_id": write.who.key_id,
                                "idem": idem,
                                "hash": digest,
                                "status": status,
                                "response": jsonb_text(body),
                            },
                        )
                    self.record(conn, request, write, status, body, idempotency_key=idem)
        if failure is not None:
            raise failure
        return JSONResponse(body, status)
