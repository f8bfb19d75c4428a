"""Client for the smart-me cloud REST API: devices and cumulative meter registers.

Why it looks the way it does:

* smart-me runs two dialects: the legacy host ``https://smart-me.com/api/...`` with PascalCase
  JSON, and ``https://api.smart-me.com/...`` without ``/api`` and with camelCase JSON. Paths
  follow ``SmartMeConfig.api_style``; JSON keys are looked up case-insensitively, so the
  parser does not care which dialect answered.
* Registers become ``Reading`` objects in kWh. ``DeviceInPast``/``Device`` carry
  ``CounterReadingUnit`` (Wh, kWh or MWh, converted); the spec gives OBIS values
  (``ValuesData.Values``) no unit, so ``SmartMeConfig.obis_value_unit`` states it (default kWh,
  what the smart-me portal shows for 1-0:1.8.0/2.8.0) and values are converted from it.
* Enumerations arrive as integers (the current description, real answers) or member names
  (the older description), in either casing; ``SmartMeDevice`` carries the member names.
  Dates carry up to seven fractional digits (.NET ticks). Both through ``smartme_schema``.
* The OBIS values' unit is a setting, so once per meter (per client) the client compares
  them with the device's ``CounterReadingImport`` (which states its unit) and refuses a
  factor-1000 disagreement with a message that names ``obis_value_unit``.
* Anything unusable (missing, null, non-numeric, negative, undated, conflicting duplicate)
  becomes a ``Rejected`` with a reason and the URL it came from: nothing is dropped silently.
* The cloud is flaky and rate limited: 429/5xx/timeouts/connection errors and malformed JSON
  are retried with exponential backoff, jitter and ``Retry-After``; every request of a client
  passes one token bucket. 401/403/404 cannot get better by retrying and fail at once with a
  message that says what to fix. Secrets never reach logs, messages or ``repr``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, urlsplit

import httpx

from vbatt.readings import Reading, Rejected
from vbatt.smartme_schema import (
    METER_ENERGY_TYPES,
    METER_FAMILY_TYPES,
    METER_SUB_TYPES,
    enum_name,
    iso,
    parse_instant,
)

log = logging.getLogger(__name__)

AuthMode = Literal["api_key", "basic", "oauth2"]
ApiStyle = Literal["auto", "legacy", "current"]

LEGACY_HOSTS = frozenset({"smart-me.com", "www.smart-me.com"})
OBIS_IMPORT = "1-0:1.8.0"
OBIS_EXPORT = "1-0:2.8.0"
_UNIT_TO_KWH = {"wh": 0.001, "kwh": 1.0, "mwh": 1000.0}
_UNIT_NAMES = {"wh": "Wh", "kwh": "kWh", "mwh": "MWh"}


class SmartMeError(RuntimeError):
    """Base class; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SmartMeAuthError(SmartMeError):
    """401/403: credentials or permissions must be fixed by a person."""


class SmartMeNotFoundError(SmartMeError):
    """404: wrong id, base URL or API dialect."""


class SmartMeUnavailableError(SmartMeError):
    """Retries exhausted on 429/5xx/timeouts/connection errors."""


class SmartMeResponseError(SmartMeError):
    """The answer could not be understood (malformed JSON after retries, wrong shape)."""


class SmartMeUnitError(SmartMeError):
    """The OBIS values and the device's registers disagree by a factor of about 1000."""


@dataclass(frozen=True)
class SmartMeConfig:
    """Everything needed to talk to one smart-me account; built in one place (the hook).

    ``max_retries`` counts retries after the first attempt. ``rate`` is requests per second
    for all calls of one client (``None`` = unlimited), ``burst`` the bucket size.
    ``conn_id`` only names the Airflow connection in error messages.
    """

    base_url: str = "https://api.smart-me.com"
    auth: AuthMode = "api_key"
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    token_url: str | None = None  # default: <scheme>://<host>/oauth/token
    scope: str = "device.read"
    api_style: ApiStyle = "auto"
    timeout: float = 30.0
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    max_malformed_retries: int = 2
    rate: float | None = 5.0
    burst: int = 1
    interval_minutes: int = 15
    max_values_per_call: int = 1000  # spec: "Only 1000 values can be get in one call"
    obis_value_unit: str = "kWh"
    conn_id: str = "smartme_default"

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if parts.username or parts.password:
            raise ValueError("put credentials in the connection's login/password, not in base_url")
        needed = {
            "api_key": ("api_key",),
            "basic": ("username", "password"),
            "oauth2": ("client_id", "client_secret"),
        }
        if self.auth not in needed:
            raise ValueError(f"auth must be one of {sorted(needed)}, got {self.auth!r}")
        missing = [name for name in needed[self.auth] if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"auth={self.auth} needs {', '.join(missing)} (connection {self.conn_id})"
            )
        if self.api_style not in ("auto", "legacy", "current"):
            raise ValueError(f"api_style must be auto, legacy or current: {self.api_style!r}")
        if self.obis_value_unit.lower() not in _UNIT_TO_KWH:
            raise ValueError(f"obis_value_unit must be Wh, kWh or MWh: {self.obis_value_unit!r}")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0 requests/second (or None for no limit)")
        if self.max_retries < 0 or self.timeout <= 0 or self.burst < 1:
            raise ValueError("max_retries >= 0, timeout > 0 and burst >= 1 are required")
        if not 1 <= self.max_values_per_call or self.interval_minutes < 1:
            raise ValueError("max_values_per_call and interval_minutes must be >= 1")

    @property
    def api_root(self) -> str:
        """Base URL plus ``/api`` where the dialect wants it."""
        parts = urlsplit(self.base_url)
        root = self.base_url.rstrip("/")
        if parts.path.rstrip("/").lower().endswith("/api"):
            return root
        style = self.api_style
        if style == "auto":
            style = "legacy" if (parts.hostname or "").lower() in LEGACY_HOSTS else "current"
        return root + "/api" if style == "legacy" else root

    @property
    def resolved_token_url(self) -> str:
        if self.token_url:
            return self.token_url
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}/oauth/token"


class FetchResult(NamedTuple):
    readings: list[Reading]
    rejected: list[Rejected]


@dataclass(frozen=True)
class SmartMeDevice:
    """A device; the enumerations as member names (``MeterTypeElectricity``), whichever
    form the server sent."""

    id: str
    name: str | None
    serial: int | None
    energy_type: str | None
    value_date: datetime | None
    import_kwh: float | None
    export_kwh: float | None
    sub_type: str | None = None
    family_type: str | None = None


class TokenBucket:
    """Request pacing shared by all threads of one client (reservations may go negative)."""

    def __init__(
        self,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst, self._clock, self._sleep = rate, burst, clock, sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> None:
        if self.rate is None:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


def _ci(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Keys folded to lower case: PascalCase and camelCase answers parse alike."""
    return {str(k).lower(): v for k, v in obj.items()}


def _need_aware(ts: datetime, name: str) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {ts.isoformat()}")
    # a plain datetime, also for pendulum's (Airflow's) whose astimezone() misbehaves here
    return datetime.fromtimestamp(ts.timestamp(), UTC)


def parse_timestamp(value: Any) -> datetime | None:
    """smart-me dates are ISO 8601, usually with ``Z`` and up to seven fractional digits;
    a naive one is taken as UTC."""
    return parse_instant(value) if isinstance(value, str) else None


def normalise_obis(code: Any) -> str | None:
    """``1-0:1.8.0*255`` and ``1-0:1.8.0`` are the same register."""
    if not isinstance(code, str):
        return None
    code = code.strip()
    return code[: -len("*255")] if code.endswith("*255") else code


def _register_problem(label: str, value: Any) -> str | None:
    if value is None:
        return f"{label} is null or missing"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{label} is not a number: {value!r}"
    if not math.isfinite(value):
        return f"{label} is not finite: {value!r}"
    if value < 0:
        return f"{label} is negative: {value!r}"
    return None


def _raw(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def parse_values_row(
    meter_id: str, row: Any, where: str, factor: float = 1.0
) -> Reading | Rejected:
    """One ``ValuesData`` object -> a Reading, or a Rejected that says why not."""
    if not isinstance(row, Mapping):
        return Rejected(meter_id, _raw(row), "value entry is not a JSON object", where)
    fields = _ci(row)
    ts = parse_timestamp(fields.get("date"))
    if ts is None:
        reason = "Date missing" if fields.get("date") is None else "Date is not ISO 8601"
        return Rejected(meter_id, _raw(row), reason, where)
    device = fields.get("deviceid")
    if device is not None and str(device) != meter_id:
        return Rejected(meter_id, _raw(row), f"belongs to device {device}, not {meter_id}", where)
    values = fields.get("values")
    if not isinstance(values, list):
        return Rejected(meter_id, _raw(row), "Values list missing", where)
    found: dict[str, Any] = {}
    for entry in values:
        if isinstance(entry, Mapping):
            e = _ci(entry)
            code = normalise_obis(e.get("obis"))
            if code in (OBIS_IMPORT, OBIS_EXPORT) and code not in found:
                found[code] = e.get("value")
    problems = [
        p
        for p in (
            _register_problem(f"import register {OBIS_IMPORT}", found.get(OBIS_IMPORT)),
            _register_problem(f"export register {OBIS_EXPORT}", found.get(OBIS_EXPORT)),
        )
        if p
    ]
    if problems:
        return Rejected(meter_id, _raw(row), "; ".join(problems), where)
    return Reading(meter_id, ts, found[OBIS_IMPORT] * factor, found[OBIS_EXPORT] * factor)


def parse_device_in_past(meter_id: str, obj: Any, where: str) -> Reading | Rejected:
    """A ``DeviceInPast`` object (MeterValues) -> Reading or Rejected."""
    if not isinstance(obj, Mapping):
        return Rejected(meter_id, _raw(obj), "answer is not a JSON object", where)
    fields = _ci(obj)
    ts = parse_timestamp(fields.get("date"))
    unit = fields.get("counterreadingunit") or "kWh"
    factor = _UNIT_TO_KWH.get(str(unit).strip().lower())
    problems = [] if ts else ["Date missing or not ISO 8601"]
    if factor is None:
        problems.append(f"unknown CounterReadingUnit {unit!r}")
    imp, exp = fields.get("counterreadingimport"), fields.get("counterreadingexport")
    problems += [
        p
        for p in (
            _register_problem("CounterReadingImport", imp),
            _register_problem("CounterReadingExport", exp),
        )
        if p
    ]
    if problems or ts is None or factor is None:
        return Rejected(meter_id, _raw(obj), "; ".join(problems), where)
    return Reading(meter_id, ts, imp * factor, exp * factor)


def merge_readings(items: Iterable[Reading | Rejected]) -> FetchResult:
    """Sort by time; identical duplicates collapse, conflicting ones are rejected."""
    by_ts: dict[datetime, Reading] = {}
    rejected: list[Rejected] = []
    for item in items:
        if isinstance(item, Rejected):
            rejected.append(item)
            continue
        seen = by_ts.get(item.ts)
        if seen is None:
            by_ts[item.ts] = item
        elif (seen.import_kwh, seen.export_kwh) != (item.import_kwh, item.export_kwh):
            reason = (
                f"conflicting duplicate for {iso(item.ts)}: kept import={seen.import_kwh}"
                f" export={seen.export_kwh}"
            )
            rejected.append(Rejected(item.meter_id, repr(item), reason, ""))
    return FetchResult([by_ts[ts] for ts in sorted(by_ts)], rejected)


class SmartMeClient:
    """Synchronous smart-me client; one instance = one token bucket and one token cache."""

    def __init__(
        self,
        config: SmartMeConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._sleep, self._clock = sleep, clock
        self._rng = rng or random.Random()
        self._bucket = TokenBucket(config.rate, config.burst, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            transport=transport,
            timeout=config.timeout,
            headers={"Accept": "application/json", "User-Agent": "vbatt-smartme/1"},
        )
        self._token: tuple[str, float] | None = None  # (access token, expiry on clock)
        self._token_lock = threading.Lock()
        self._units_checked: set[str] = set()  # meters whose OBIS unit was confirmed
        self._units_lock = threading.Lock()

    def __repr__(self) -> str:
        c = self.config
        return f"SmartMeClient(base_url={c.base_url!r}, auth={c.auth!r}, conn_id={c.conn_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SmartMeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- public API ---------------------------------------------------------------------

    def list_devices(self) -> list[SmartMeDevice]:
        data = self._get("Devices", what="the device list")
        if not isinstance(data, list):
            raise SmartMeResponseError("smart-me Devices answer is not a JSON list")
        devices = []
        for obj in data:
            device = self._device(obj)
            if device is None:
                log.warning("smart-me Devices: skipped an entry without Id: %s", _raw(obj)[:200])
            else:
                devices.append(device)
        return devices

    def get_device(self, device_id: str) -> SmartMeDevice:
        data = self._get(f"Devices/{quote(device_id, safe='')}", what=f"device {device_id}")
        device = self._device(data)
        if device is None:
            raise SmartMeResponseError(f"smart-me answer for device {device_id} has no Id")
        return device

    def meter_value_at(self, meter_id: str, at: datetime) -> FetchResult:
        """The registers smart-me has for ``meter_id`` last before ``at`` (MeterValues)."""
        at = _need_aware(at, "at")
        resource = f"MeterValues/{quote(meter_id, safe='')}"
        params = {"date": iso(at)}
        data = self._get(resource, params=params, what=f"MeterValues for meter {meter_id}")
        return merge_readings([parse_device_in_past(meter_id, data, self._where(resource, params))])

    def readings(
        self,
        meter_id: str,
        start: datetime,
        end: datetime,
        *,
        interval_minutes: int | None = None,
    ) -> FetchResult:
        """Register readings from ``start`` to ``end`` (both inclusive), sorted by time.

        Uses ValuesInPastMultiple; the range is cut into calls of at most
        ``max_values_per_call`` values and the answers merged.
        """
        start, end = _need_aware(start, "start"), _need_aware(end, "end")
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        interval = interval_minutes or self.config.interval_minutes
        if interval < 1:
            raise ValueError("interval_minutes must be >= 1 (0 would make the paging unknowable)")
        step = timedelta(minutes=interval)
        # Windows are half-open [s, s + n*step) sent with an inclusive endDate one second (the
        # query format's resolution) earlier: n values at most, none lost between windows.
        span = step * self.config.max_values_per_call - timedelta(seconds=1)
        factor = _UNIT_TO_KWH[self.config.obis_value_unit.lower()]
        resource = f"ValuesInPastMultiple/{quote(meter_id, safe='')}"
        items: list[Reading | Rejected] = []
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(chunk_start + span, end)
            params = {
                "startDate": iso(chunk_start),
                "endDate": iso(chunk_end),
                "interval": str(interval),
            }
            data = self._get(resource, params=params, what=f"ValuesInPastMultiple for {meter_id}")
            where = self._where(resource, params)
            if not isinstance(data, list):
                items.append(Rejected(meter_id, _raw(data), "answer is not a JSON list", where))
            else:
                items.extend(parse_values_row(meter_id, row, where, factor) for row in data)
            chunk_start = chunk_end + timedelta(seconds=1)
        result = merge_readings(items)
        self._check_units(meter_id, result.readings)
        if result.rejected:
            log.warning(
                "smart-me meter %s: %d readings, %d rejected",
                meter_id,
                len(result.readings),
                len(result.rejected),
            )
        return result

    def _check_units(self, meter_id: str, readings: list[Reading]) -> None:
        """Once per meter: do the OBIS values have the magnitude of the device's register?

        ``CounterReadingImport`` states its unit, the OBIS values do not (the setting
        ``obis_value_unit`` does). A register only grows, so an OBIS import far above the
        device's current one is a wrong unit whatever its date; one far below is, when it
        is from the device's last day (earlier, a young meter may really have been tiny).
        """
        with self._units_lock:
            if meter_id in self._units_checked or not readings:
                return
        device = self.get_device(meter_id)
        now_kwh = device.import_kwh
        if not now_kwh or now_kwh <= 0:
            return  # nothing to compare with yet: checked on a later call
        top = max(readings, key=lambda r: r.import_kwh)
        ratio = top.import_kwh / now_kwh
        recent = device.value_date is None or readings[-1].ts >= device.value_date - timedelta(
            days=1
        )
        if ratio > 300 or (recent and 0 < readings[-1].import_kwh / now_kwh < 1 / 300):
            ratio = ratio if ratio > 300 else readings[-1].import_kwh / now_kwh
            c = self.config
            given = _UNIT_TO_KWH[c.obis_value_unit.lower()]
            fits = min(_UNIT_TO_KWH, key=lambda u: abs(math.log10(given / ratio / _UNIT_TO_KWH[u])))
            raise SmartMeUnitError(
                f"smart-me meter {meter_id}: its ValuesInPastMultiple import values, read as "
                f"{c.obis_value_unit} (setting obis_value_unit of connection {c.conn_id}), are "
                f"{ratio:.4g} times its CounterReadingImport of {now_kwh:.6g} kWh: the values "
                f"look like {_UNIT_NAMES[fits]}; set obis_value_unit to {_UNIT_NAMES[fits]} "
                f"in connection {c.conn_id} (nothing was loaded)"
            )
        if ratio > 0:
            with self._units_lock:
                self._units_checked.add(meter_id)

    # -- plumbing -----------------------------------------------------------------------

    def _where(self, resource: str, params: Mapping[str, str]) -> str:
        return str(httpx.URL(f"{self.config.api_root}/{resource}", params=dict(params)))

    @staticmethod
    def _device(obj: Any) -> SmartMeDevice | None:
        if not isinstance(obj, Mapping) or not _ci(obj).get("id"):
            return None
        f = _ci(obj)
        factor = _UNIT_TO_KWH.get(str(f.get("counterreadingunit") or "kWh").lower())

        def kwh(key: str) -> float | None:
            v = f.get(key)
            ok = factor is not None and _register_problem(key, v) is None
            return v * factor if ok else None

        serial = f.get("serial")
        return SmartMeDevice(
            id=str(f["id"]),
            name=f.get("name"),
            serial=serial if isinstance(serial, int) and not isinstance(serial, bool) else None,
            energy_type=enum_name(f.get("deviceenergytype"), METER_ENERGY_TYPES),
            value_date=parse_timestamp(f.get("valuedate")),
            import_kwh=kwh("counterreadingimport"),
            export_kwh=kwh("counterreadingexport"),
            sub_type=enum_name(f.get("metersubtype"), METER_SUB_TYPES),
            family_type=enum_name(f.get("familytype"), METER_FAMILY_TYPES),
        )

    def _get(self, resource: str, *, what: str, params: Mapping[str, str] | None = None) -> Any:
        url = f"{self.config.api_root}/{resource}"
        return self._call("GET", url, what=what, params=params)

    def _auth_header(self) -> str:
        c = self.config
        if c.auth == "api_key":
            return f"ApiKey {c.api_key}"
        if c.auth == "basic":
            pair = f"{c.username}:{c.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return f"Bearer {self._access_token()}"

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token and self._token[1] > self._clock():
                return self._token[0]
            c = self.config
            data = self._call(
                "POST",
                c.resolved_token_url,
                what="an OAuth token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": c.client_id or "",
                    "client_secret": c.client_secret or "",
                    "scope": c.scope,
                },
                token_request=True,
            )
            fields = _ci(data) if isinstance(data, Mapping) else {}
            token = fields.get("access_token")
            if not isinstance(token, str) or not token:
                raise SmartMeResponseError("smart-me token endpoint answered without access_token")
            try:
                ttl = float(fields.get("expires_in") or 3600)
            except (TypeError, ValueError):
                ttl = 3600.0
            # Renew a little early so a token does not expire between check and use.
            self._token = (token, self._clock() + max(ttl - min(60.0, ttl * 0.1), 0.0))
            log.info("smart-me: fetched an OAuth token valid for %.0fs", ttl)
            return token

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)  # "equal jitter"

    def _retry_after(self, resp: httpx.Response) -> float | None:
        value = resp.headers.get("retry-after")
        if not value:
            return None
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        return min(max(seconds, 0.0), self.config.retry_after_max)

    def _fatal(
        self, status: int, what: str, url: str, token_request: bool, body: Any
    ) -> SmartMeError:
        c = self.config
        conn = f"connection {c.conn_id}"
        if token_request:
            error = _ci(body).get("error") if isinstance(body, Mapping) else None
            detail = f" ({error})" if isinstance(error, str) else ""
            if status == 404:
                return SmartMeNotFoundError(
                    f"smart-me token endpoint not found (404 at {url}): check token_url in {conn}",
                    status,
                )
            return SmartMeAuthError(
                f"smart-me rejected the OAuth client credentials ({status}{detail}): check "
                f"client_id, client_secret, scope and token_url in {conn}",
                status,
            )
        path = urlsplit(url).path
        if status == 401:
            message = {
                "api_key": f"smart-me rejected the API key (401): check the key in {conn}",
                "basic": "smart-me rejected the username/password (401): check login and "
                f"password in {conn}",
                "oauth2": "smart-me rejected the OAuth token (401) even after fetching a new "
                f"one: check that the OAuth client of {conn} has scope {c.scope}",
            }[c.auth]
            return SmartMeAuthError(message, status)
        if status == 403:
            return SmartMeAuthError(
                f"smart-me refused access to {what} (403 at {path}): the credentials of {conn} "
                "lack the permission (ValuesInPastMultiple needs a professional licence, API "
                "keys need a device read claim)",
                status,
            )
        return SmartMeNotFoundError(
            f"smart-me found no {what} (404 at {path}): check the id and the base URL/api_style "
            f"of {conn} (the legacy host smart-me.com serves under /api)",
            status,
        )

    def _call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        token_request: bool = False,
    ) -> Any:
        """One logical request with retries; returns the parsed JSON body."""
        c = self.config
        attempts = c.max_retries + 1
        attempt = malformed = 0
        refreshed = False
        while True:
            attempt += 1
            self._bucket.take()
            headers = {} if token_request else {"Authorization": self._auth_header()}
            wait: float | None = None
            try:
                resp = self._http.request(method, url, params=params, data=data, headers=headers)
            except httpx.TimeoutException:
                problem = f"no answer within {c.timeout}s"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__})"
            else:
                status = resp.status_code
                log.debug("smart-me %s %s -> %d", method, url, status)
                if status == 401 and not token_request and c.auth == "oauth2" and not refreshed:
                    refreshed = True  # the token may have been revoked early: renew it once
                    with self._token_lock:
                        self._token = None
                    attempt -= 1
                    continue
                if status in (401, 403, 404) or (token_request and status == 400):
                    raise self._fatal(status, what, url, token_request, _safe_json(resp)) from None
                if status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                    wait = self._retry_after(resp)
                elif status >= 400:
                    raise SmartMeError(
                        f"smart-me answered {status} to the request for {what}: "
                        f"{resp.text[:200]!r}",
                        status,
                    )
                else:
                    try:
                        return resp.json()
                    except ValueError:
                        malformed += 1
                        problem = "malformed JSON"
                        if malformed > c.max_malformed_retries:
                            raise SmartMeResponseError(
                                f"smart-me sent malformed JSON for {what} {malformed} times in a "
                                f"row (last {len(resp.content)} bytes from {urlsplit(url).path})",
                                status,
                            ) from None
            if attempt >= attempts:
                raise SmartMeUnavailableError(
                    f"smart-me request for {what} failed after {attempt} attempts "
                    f"(last problem: {problem}); raise max_retries in connection {c.conn_id} "
                    "or try later"
                )
            delay = wait if wait is not None else self._backoff(attempt)
            log.warning(
                "smart-me %s: %s (attempt %d of %d), retrying in %.2fs",
                what,
                problem,
                attempt,
                attempts,
                delay,
            )
            self._sleep(delay)


def _safe_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


# -- Realtime API registrations (docs/realtime.md) ------------------------------------------

REALTIME_REGISTRATION_TYPES = {"disabled": 0, "meter": 1, "user": 2}


def _realtime_call(
    client: SmartMeClient, method: str, resource: str, *, what: str, body: Any = None
) -> Any:
    """One registration request; no automatic retry (a POST twice is two registrations)."""
    url = f"{client.config.api_root}/{resource}"
    client._bucket.take()
    try:
        resp = client._http.request(
            method, url, json=body, headers={"Authorization": client._auth_header()}
        )
    except httpx.TransportError as exc:
        raise SmartMeUnavailableError(
            f"smart-me did not answer the request for {what} ({type(exc).__name__}); try again"
        ) from None
    if resp.status_code in (401, 403):
        raise SmartMeError(
            f"smart-me refused the credentials for {what} (HTTP {resp.status_code}): check "
            "SMARTME_API_KEY or SMARTME_USER/SMARTME_PASSWORD",
            resp.status_code,
        )
    if resp.status_code >= 400:
        raise SmartMeError(
            f"smart-me answered {resp.status_code} to the request for {what}: {resp.text[:200]!r}",
            resp.status_code,
        )
    return _safe_json(resp) if resp.content.strip() else None


def register_realtime(
    client: SmartMeClient,
    api_url: str,
    *,
    username: str,
    password: str,
    meter_id: str | None = None,
    serial_number: str | None = None,
) -> dict[str, Any] | None:
    """``POST /RegisterForRealtimeApi``: every device of the user, or one meter (by id or
    serial number); smart-me then POSTs their values to ``api_url`` with these credentials.
    Returns the registration if smart-me answers with one."""
    one = meter_id is not None or serial_number is not None
    body = {
        "registrationType": REALTIME_REGISTRATION_TYPES["meter" if one else "user"],
        "meterId": meter_id,
        "serialNumber": serial_number,
        "apiUrl": api_url,
        "basicAuthUsername": username,
        "basicAuthPassword": password,
    }
    answer = _realtime_call(
        client, "POST", "RegisterForRealtimeApi", what="a realtime registration", body=body
    )
    return answer if isinstance(answer, Mapping) else None


def realtime_registrations(client: SmartMeClient) -> list[dict[str, Any]]:
    """``GET /RegisterForRealtimeApi``, keys folded to camelCase as the 2026 spec has them."""
    answer = _realtime_call(
        client, "GET", "RegisterForRealtimeApi", what="the realtime registrations"
    )
    if not isinstance(answer, list):
        raise SmartMeResponseError("smart-me's list of realtime registrations is not a list")
    return [
        {k[:1].lower() + k[1:]: v for k, v in r.items()} for r in answer if isinstance(r, Mapping)
    ]


def delete_realtime_registration(client: SmartMeClient, registration_id: str) -> None:
    """``DELETE /RegisterForRealtimeApi/{id}``."""
    _realtime_call(
        client,
        "DELETE",
        f"RegisterForRealtimeApi/{registration_id}",
        what=f"deleting realtime registration {registration_id}",
    )
