"""smart-me client: against the real simulator (subprocess) and httpx.MockTransport.

The simulator's ``ground_truth`` is the oracle: whatever faults the server injects, what the
client returns must equal the truth, and whatever it could not read must be a ``Rejected``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from vbatt.ingest.smartme import (
    FetchResult,
    SmartMeAuthError,
    SmartMeClient,
    SmartMeConfig,
    SmartMeNotFoundError,
    SmartMeResponseError,
    SmartMeUnavailableError,
    TokenBucket,
)
from vbatt.readings import Reading
from vbatt.simulator import get_stats, reset, set_faults, start_in_background
from vbatt.simulator.app import (
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_USER,
)
from vbatt.simulator.faults import Faults
from vbatt.simulator.households import ground_truth

SEED = 7
START = datetime(2025, 6, 20, tzinfo=UTC)
QUARTER = timedelta(minutes=15)

CREDENTIALS: dict[str, dict[str, Any]] = {
    "api_key": {"auth": "api_key", "api_key": DEMO_API_KEY},
    "basic": {"auth": "basic", "username": DEMO_USER, "password": DEMO_PASSWORD},
    "oauth2": {
        "auth": "oauth2",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    url, stop = start_in_background(meters=3, seed=SEED)
    try:
        yield url
    finally:
        stop()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "sim" in request.fixturenames:
        url = request.getfixturevalue("sim")
        set_faults(url, **Faults().model_dump(mode="json"))
        reset(url)


def make_client(url: str, mode: str = "api_key", **overrides: Any) -> SmartMeClient:
    settings: dict[str, Any] = {
        "base_url": url,
        "rate": None,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "timeout": 5.0,
        **CREDENTIALS[mode],
    }
    return SmartMeClient(SmartMeConfig(**(settings | overrides)))


def quarters(start: datetime, end: datetime) -> list[datetime]:
    out, ts = [], start
    while ts <= end:
        out.append(ts)
        ts += QUARTER
    return out


def assert_truth(
    result: FetchResult, meter: str, expected_ts: list[datetime], drops: Any = None
) -> None:
    assert not result.rejected, result.rejected[:3]
    assert [r.ts for r in result.readings] == expected_ts
    for r in result.readings:
        truth = ground_truth(meter, r.ts, seed=SEED, counter_drops=drops)
        assert (r.import_kwh, r.export_kwh) == truth, r


def path_requests(url: str, fragment: str) -> int:
    return sum(n for p, n in get_stats(url)["requests"].items() if fragment in p)


# -- against the simulator ---------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(CREDENTIALS))
@pytest.mark.parametrize("style", ["legacy", "current"])
def test_each_auth_mode_and_host_dialect_reads_ground_truth(
    sim: str, mode: str, style: str
) -> None:
    end = START + timedelta(hours=6)
    with make_client(sim, mode, api_style=style) as client:
        result = client.readings("SIM-0002", START, end)
        devices = client.list_devices()
    assert_truth(result, "SIM-0002", quarters(START, end))
    assert [d.id for d in devices] == ["SIM-0001", "SIM-0002", "SIM-0003"]
    assert all(d.serial and d.name and d.import_kwh and d.import_kwh > 0 for d in devices)
    prefix = "/api/" if style == "legacy" else "/ValuesInPastMultiple"
    assert path_requests(sim, prefix + ("ValuesInPastMultiple" if style == "legacy" else "")) == 1


def test_api_root_auto_detection() -> None:
    def root(url: str, style: str = "auto") -> str:
        return SmartMeConfig(base_url=url, api_key="k", api_style=style).api_root  # type: ignore[arg-type]

    assert root("https://smart-me.com") == "https://smart-me.com/api"
    assert root("https://smart-me.com:443/") == "https://smart-me.com:443/api"
    assert root("https://api.smart-me.com") == "https://api.smart-me.com"
    assert root("http://127.0.0.1:9/api") == "http://127.0.0.1:9/api"
    assert root("http://127.0.0.1:9", "legacy") == "http://127.0.0.1:9/api"
    assert root("https://smart-me.com", "current") == "https://smart-me.com"


def test_ranges_over_1000_values_are_split_and_merged(sim: str) -> None:
    start = START + timedelta(minutes=7)  # unaligned: paging must neither gap nor overlap
    end = start + timedelta(days=12)
    with make_client(sim) as client:
        result = client.readings("SIM-0001", start, end)
    expected = quarters(START + QUARTER, end)
    assert len(expected) > 1000
    assert_truth(result, "SIM-0001", expected)
    assert path_requests(sim, "ValuesInPastMultiple/SIM-0001") == 2


def test_smaller_pages_need_more_calls(sim: str) -> None:
    end = START + timedelta(days=1)
    with make_client(sim, max_values_per_call=10) as client:
        result = client.readings("SIM-0003", START, end)
    assert_truth(result, "SIM-0003", quarters(START, end))
    assert path_requests(sim, "ValuesInPastMultiple/SIM-0003") == 10  # 97 values / 10


FAULTS = {
    "429": {"rate_429": 0.5, "retry_after_s": 0},
    "500": {"rate_500": 0.5},
    "malformed": {"rate_malformed": 0.5},
    "duplicate": {"rate_duplicate": 0.2},
    "out_of_order": {"rate_out_of_order": 1.0},
    "hang": {"hang_rate": 0.4, "hang_ms": 1500},
    "all": {
        "rate_429": 0.2,
        "retry_after_s": 0,
        "rate_500": 0.2,
        "rate_malformed": 0.2,
        "rate_duplicate": 0.1,
        "rate_out_of_order": 0.5,
        "latency_ms": 5,
    },
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_with_retries_faults_do_not_change_the_data(sim: str, fault: str) -> None:
    set_faults(sim, **FAULTS[fault])
    end = START + timedelta(days=2)
    with make_client(sim, max_values_per_call=24, timeout=0.4) as client:
        result = client.readings("SIM-0002", START, end)
    assert_truth(result, "SIM-0002", quarters(START, end))
    injected = get_stats(sim)["faults"]
    kinds = [
        k for k in ("429", "500", "malformed", "duplicate", "out_of_order", "hang") if k in fault
    ]
    for kind in kinds or ["429", "500", "malformed"]:
        assert injected.get(kind, 0) > 0, injected


def test_retry_after_seconds_is_honoured(sim: str) -> None:
    set_faults(sim, rate_429=1.0, retry_after_s=1, max_consecutive_faults=1)
    t0 = time.monotonic()
    with make_client(sim) as client:
        client.get_device("SIM-0001")
    assert time.monotonic() - t0 >= 1.0
    assert get_stats(sim)["faults"]["429"] == 1


def test_retry_after_http_date_is_honoured(sim: str) -> None:
    set_faults(
        sim, rate_429=1.0, retry_after_s=1, retry_after_http_date=True, max_consecutive_faults=1
    )
    t0 = time.monotonic()
    with make_client(sim) as client:
        client.get_device("SIM-0001")
    assert time.monotonic() - t0 >= 0.9  # the date lies >= 1 s ahead (whole seconds)
    assert get_stats(sim)["faults"]["429"] == 1


def test_missing_values_become_rejected_with_reasons(sim: str) -> None:
    set_faults(sim, rate_missing=0.15)
    end = START + timedelta(days=1)
    with make_client(sim) as client:
        result = client.readings("SIM-0001", START, end)
    missing = get_stats(sim)["faults"]["missing"]
    assert missing > 0 and len(result.rejected) == missing
    rejected_ts = set()
    for rej in result.rejected:
        assert rej.meter_id == "SIM-0001" and rej.reason
        assert "ValuesInPastMultiple/SIM-0001" in rej.where
        raw = json.loads(rej.raw)
        rejected_ts.add(datetime.fromisoformat(raw["date"]))
    assert {r.ts for r in result.readings}.isdisjoint(rejected_ts)
    assert sorted({r.ts for r in result.readings} | rejected_ts) == quarters(START, end)
    for r in result.readings:
        assert (r.import_kwh, r.export_kwh) == ground_truth("SIM-0001", r.ts, seed=SEED)
    reasons = " ".join(r.reason for r in result.rejected)
    assert "null or missing" in reasons or "not a number" in reasons


def test_meter_value_at_and_missing_register(sim: str) -> None:
    at = START + timedelta(hours=12, minutes=3)
    with make_client(sim) as client:
        ok = client.meter_value_at("SIM-0003", at)
        set_faults(sim, rate_missing=1.0)
        bad = client.meter_value_at("SIM-0003", at)
    assert_truth(ok, "SIM-0003", [START + timedelta(hours=12)])
    assert not bad.readings and "CounterReadingImport is null" in bad.rejected[0].reason


def test_counter_drop_is_delivered_as_is(sim: str) -> None:
    drops = {"SIM-0003": START + timedelta(hours=10)}
    set_faults(sim, counter_drop=drops)
    end = START + timedelta(hours=20)
    with make_client(sim) as client:
        result = client.readings("SIM-0003", START, end)
    assert_truth(result, "SIM-0003", quarters(START, end), drops)
    imports = [r.import_kwh for r in result.readings]
    assert min(imports) < 1 < imports[0]


def test_persistent_500_gives_up_with_a_clear_error(sim: str) -> None:
    set_faults(sim, rate_500=1.0, max_consecutive_faults=100)
    with make_client(sim, max_retries=2) as client, pytest.raises(SmartMeUnavailableError) as exc:
        client.get_device("SIM-0001")
    assert "3 attempts" in str(exc.value) and "HTTP 500" in str(exc.value)
    assert path_requests(sim, "Devices/SIM-0001") == 3


def test_malformed_json_is_retried_a_bounded_number_of_times(sim: str) -> None:
    set_faults(sim, rate_malformed=1.0, max_consecutive_faults=100)
    client = make_client(sim, max_retries=10, max_malformed_retries=2)
    with client, pytest.raises(SmartMeResponseError, match="malformed JSON"):
        client.list_devices()
    assert path_requests(sim, "Devices") == 3


@pytest.mark.parametrize(
    ("mode", "wrong", "hint"),
    [
        ("api_key", {"api_key": "WRONG-KEY-1234"}, "check the key in connection smartme_default"),
        ("basic", {"password": "WRONG-PASSWORD-1234"}, "check login and password"),
        ("oauth2", {"client_secret": "WRONG-SECRET-1234"}, "check client_id, client_secret"),
    ],
)
def test_bad_credentials_fail_at_once_with_a_hint(
    sim: str, mode: str, wrong: dict[str, str], hint: str
) -> None:
    with make_client(sim, mode, max_retries=5, **wrong) as client:
        with pytest.raises(SmartMeAuthError) as exc:
            client.readings("SIM-0001", START, START + timedelta(hours=1))
    assert hint in str(exc.value) and exc.value.status == 401
    assert next(iter(wrong.values())) not in str(exc.value)
    stats = get_stats(sim)
    assert sum(stats["requests"].values()) + stats["token_requests"] == 1


def test_unknown_meter_fails_at_once_with_404(sim: str) -> None:
    with make_client(sim) as client, pytest.raises(SmartMeNotFoundError) as exc:
        client.readings("SIM-0099", START, START + timedelta(hours=1))
    assert "404" in str(exc.value) and "check the id" in str(exc.value)
    assert path_requests(sim, "SIM-0099") == 1


def test_oauth_token_is_cached_and_renewed_after_401(sim: str) -> None:
    with make_client(sim, "oauth2") as client:
        client.list_devices()
        client.get_device("SIM-0001")
        assert get_stats(sim)["token_requests"] == 1
        httpx.post(f"{sim}/_sim/revoke-tokens").raise_for_status()
        client.get_device("SIM-0002")
    assert get_stats(sim)["token_requests"] == 2


def test_rate_limit_is_shared_by_all_calls_of_a_client(sim: str) -> None:
    client = make_client(sim, rate=20.0)
    calls = 12

    def work() -> None:
        for _ in range(calls // 3):
            client.get_device("SIM-0001")

    t0 = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    client.close()
    assert elapsed >= (calls - 1) / 20.0 * 0.95
    assert path_requests(sim, "Devices/SIM-0001") == calls


# -- with a MockTransport ----------------------------------------------------------------

SECRETS = {
    "api_key": "apikey-XYZZY-123456",
    "password": "password-XYZZY-123456",
    "client_secret": "clientsecret-XYZZY-123456",
    "token": "accesstoken-XYZZY-123456",
}


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], fake: FakeTime | None = None, **kw: Any
) -> SmartMeClient:
    fake = fake or FakeTime()
    settings: dict[str, Any] = {
        "base_url": "https://api.smart-me.com",
        "api_key": SECRETS["api_key"],
        "rate": None,
        "backoff_base": 1.0,
        "backoff_max": 60.0,
    }
    return SmartMeClient(
        SmartMeConfig(**(settings | kw)),
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
    )


def values_row(ts: str, imp: Any, exp: Any, *, camel: bool = False, suffix: str = "*255") -> Any:
    row = {
        "Date": ts,
        "DeviceId": "M1",
        "Values": [
            {"Obis": f"1-0:1.8.0{suffix}", "Value": imp},
            {"Obis": f"1-0:2.8.0{suffix}", "Value": exp},
        ],
    }
    if camel:
        row = json.loads(
            json.dumps(row)
            .replace('"Date"', '"date"')
            .replace('"Values"', '"values"')
            .replace('"Obis"', '"obis"')
            .replace('"Value"', '"value"')
        )
    return row


def test_parsing_camel_case_units_obis_suffix_and_bad_values() -> None:
    rows = [
        values_row("2025-01-01T00:00:00Z", 1500.0, 250.0),
        values_row("2025-01-01T00:15:00Z", 1600.0, 250.0, camel=True, suffix=""),
        values_row("2025-01-01T00:30:00Z", -1.0, 250.0),
        values_row("2025-01-01T00:45:00Z", "12", 250.0),
        values_row("2025-01-01T00:15:00Z", 1700.0, 250.0),  # conflicts with 00:15
        values_row("2025-01-01T00:00:00Z", 1500.0, 250.0),  # harmless duplicate
        {"DeviceId": "M1", "Values": []},
        "garbage",
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/Devices/M1":  # the once-per-meter unit check
            return httpx.Response(200, json={"id": "M1", "counterReadingImport": 1.7})
        assert request.url.path == "/ValuesInPastMultiple/M1"
        assert set(request.url.params) == {"startDate", "endDate", "interval"}
        return httpx.Response(200, json=rows)

    with mock_client(handler, obis_value_unit="Wh") as client:
        result = client.readings(
            "M1", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 1, tzinfo=UTC)
        )
    assert result.readings == [
        Reading("M1", datetime(2025, 1, 1, tzinfo=UTC), 1.5, 0.25),
        Reading("M1", datetime(2025, 1, 1, 0, 15, tzinfo=UTC), 1.6, 0.25),
    ]
    reasons = [r.reason for r in result.rejected]
    assert any("negative" in r for r in reasons)
    assert any("not a number" in r for r in reasons)
    assert any("conflicting duplicate" in r for r in reasons)
    assert any("Date missing" in r for r in reasons)
    assert any("not a JSON object" in r for r in reasons)
    assert len(result.rejected) == 5


def test_device_in_past_unit_is_converted() -> None:
    body = {
        "Id": "M1",
        "Date": "2025-01-01T00:00:00Z",
        "CounterReadingImport": 2500.0,
        "CounterReadingExport": 500.0,
        "CounterReadingUnit": "Wh",
    }
    with mock_client(lambda r: httpx.Response(200, json=body)) as client:
        result = client.meter_value_at("M1", datetime(2025, 1, 1, 0, 5, tzinfo=UTC))
    assert result.readings == [Reading("M1", datetime(2025, 1, 1, tzinfo=UTC), 2.5, 0.5)]


def scripted(*responses: httpx.Response | Exception) -> tuple[Callable[..., httpx.Response], list]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def test_backoff_is_exponential_with_jitter_and_retry_after_wins() -> None:
    handler, seen = scripted(
        httpx.Response(500),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503),
        httpx.Response(200, json=[]),
    )
    fake = FakeTime()
    with mock_client(handler, fake) as client:
        assert client.list_devices() == []
    assert len(seen) == 6
    s = fake.sleeps
    assert s[3] == 7.0  # Retry-After, not the backoff
    for attempt, delay in zip((1, 2, 3, 5), (s[0], s[1], s[2], s[4]), strict=True):
        ceiling = 2.0 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


def test_retry_after_http_date_sets_the_wait() -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    handler, _ = scripted(
        httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}),
        httpx.Response(200, json=[]),
    )
    fake = FakeTime()
    with mock_client(handler, fake) as client:
        client.list_devices()
    assert 27 <= fake.sleeps[0] <= 30


@pytest.mark.parametrize(("status", "text"), [(403, "lack the permission"), (404, "check the id")])
def test_403_and_404_fail_at_once(status: int, text: str) -> None:
    handler, seen = scripted(httpx.Response(status))
    with (
        mock_client(handler, max_retries=5) as client,
        pytest.raises((SmartMeAuthError, SmartMeNotFoundError)) as exc,
    ):
        client.get_device("M1")
    assert text in str(exc.value) and "smartme_default" in str(exc.value)
    assert len(seen) == 1


def test_oauth_token_expiry_and_401_refresh_and_no_secret_anywhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens: list[str] = []
    state = {"api_calls": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            assert form["grant_type"] == "client_credentials" and form["scope"] == "device.read"
            assert form["client_secret"] == SECRETS["client_secret"]
            token = f"{SECRETS['token']}-{len(tokens)}"
            tokens.append(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": 600})
        state["api_calls"] += 1
        assert request.headers["authorization"].startswith("Bearer ")
        if request.headers["authorization"] != f"Bearer {tokens[-1]}" or state["api_calls"] == 3:
            return httpx.Response(401)  # 3rd call: server revoked the token early
        if state["api_calls"] == 5:
            return httpx.Response(500, text="oops")
        return httpx.Response(200, json=[])

    fake = FakeTime()
    caplog.set_level(logging.DEBUG)
    client = mock_client(
        handler,
        fake,
        auth="oauth2",
        api_key=None,
        client_id="my-client",
        client_secret=SECRETS["client_secret"],
    )
    with client:
        client.list_devices()
        client.list_devices()
        assert len(tokens) == 1  # cached
        client.list_devices()  # 401 -> new token -> ok
        assert len(tokens) == 2
        client.list_devices()  # 500 then ok: a retry with a warning in the log
        fake.now += 601  # expired
        client.list_devices()
        assert len(tokens) == 3
        texts = [caplog.text, repr(client), repr(client.config), str(client.config)]
    for secret in [*SECRETS.values(), *tokens]:
        assert all(secret not in text for text in texts), secret
    assert "retrying" in caplog.text


def test_secrets_never_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    for settings in (
        {"api_key": SECRETS["api_key"]},
        {"auth": "basic", "username": "u", "password": SECRETS["password"], "api_key": None},
    ):
        handler, _ = scripted(httpx.Response(500), httpx.Response(401))
        client = mock_client(handler, **settings)
        with client, pytest.raises(SmartMeAuthError) as exc:
            client.list_devices()
        texts += [str(exc.value), repr(exc.value), repr(client), repr(client.config)]
    texts.append(caplog.text)
    assert "retrying" in caplog.text
    for secret in SECRETS.values():
        assert all(secret not in text for text in texts), secret


def test_naive_datetimes_and_missing_credentials_are_refused() -> None:
    with mock_client(lambda r: httpx.Response(200, json=[])) as client:
        with pytest.raises(ValueError, match="timezone-aware"):
            client.readings("M1", datetime(2025, 1, 1), datetime(2025, 1, 2))
    with pytest.raises(ValueError, match="needs client_secret"):
        SmartMeConfig(auth="oauth2", client_id="c")
    with pytest.raises(ValueError, match="not in base_url"):
        SmartMeConfig(base_url="https://u:p@api.smart-me.com", api_key="k")


def test_token_bucket_spaces_requests() -> None:
    fake = FakeTime()
    bucket = TokenBucket(4.0, burst=2, clock=fake.clock, sleep=fake.sleep)
    for _ in range(6):
        bucket.take()
    assert fake.now - 1000.0 == pytest.approx(1.0)  # 2 free, then 4 x 0.25 s


# -- the wire as smart-me sends it: enumerations, seven fractional digits, units ------------


def test_enumerations_as_integers_or_names_in_either_casing() -> None:
    devices = [
        {"id": "A", "deviceEnergyType": 1, "meterSubType": 9, "familyType": 1002},
        {
            "Id": "B",
            "DeviceEnergyType": "MeterTypeElectricity",
            "MeterSubType": "metersubtypevirtualbattery",
            "FamilyType": "METERFAMILYTYPEVIRTUALBILLINGMETER",
        },
        {"id": "C", "deviceEnergyType": "1", "meterSubType": 77, "familyType": None},
        {
            "id": "D",
            "valueDate": "2026-07-25T13:06:32.0500519Z",
            "counterReadingImport": 1234.5,
            "counterReadingUnit": "Wh",
        },
    ]
    with mock_client(lambda r: httpx.Response(200, json=devices)) as client:
        a, b, c, d = client.list_devices()
    assert (a.energy_type, a.sub_type, a.family_type) == (
        "MeterTypeElectricity",
        "MeterSubTypeVirtualBattery",
        "MeterFamilyTypeVirtualBillingMeter",
    )
    assert (b.energy_type, b.sub_type, b.family_type) == (a.energy_type, a.sub_type, a.family_type)
    assert (c.energy_type, c.sub_type, c.family_type) == ("MeterTypeElectricity", "77", None)
    assert d.value_date == datetime(2026, 7, 25, 13, 6, 32, 50051, tzinfo=UTC)
    assert d.import_kwh == pytest.approx(1.2345)


def test_seven_fractional_digits_in_values_and_no_more() -> None:
    rows = [
        values_row("2025-01-01T00:15:00.0000000Z", 1.5, 0.25),
        values_row("2025-01-01T00:30:00.1234567+00:00", 1.6, 0.25),
        values_row("2025-01-01T00:45:00.12345678Z", 1.7, 0.25),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/Devices/M1":
            return httpx.Response(200, json={"id": "M1", "counterReadingImport": 1.8})
        return httpx.Response(200, json=rows)

    with mock_client(handler) as client:
        result = client.readings(
            "M1", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 1, tzinfo=UTC)
        )
    assert [r.ts for r in result.readings] == [
        datetime(2025, 1, 1, 0, 15, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 30, 0, 123456, tzinfo=UTC),  # truncated, as the realtime path
    ]
    assert [r.reason for r in result.rejected] == ["Date is not ISO 8601"]


def _unit_handler(values: list[float], device: dict[str, Any], seen: list[str]):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/Devices/M1":
            return httpx.Response(200, json={"id": "M1", **device})
        rows = [values_row(f"2025-01-01T00:{15 * i:02d}:00Z", v, 0.0) for i, v in enumerate(values)]
        return httpx.Response(200, json=rows)

    return handler


@pytest.mark.parametrize(
    ("setting", "values", "device", "fits"),
    [
        # values in Wh, read as kWh: far above the device's register (whatever their date)
        ("kWh", [1500.0, 1600.0], {"counterReadingImport": 1.7}, "Wh"),
        ("kWh", [1500.0], {"counterReadingImport": 1700.0, "counterReadingUnit": "Wh"}, "Wh"),
        # values in kWh, read as Wh, from the device's last day: far below it
        (
            "Wh",
            [1.5, 1.6],
            {"counterReadingImport": 1.7, "valueDate": "2025-01-01T00:20:00Z"},
            "kWh",
        ),
        # values in kWh, read as MWh
        ("MWh", [1.5], {"counterReadingImport": 1.6}, "kWh"),
    ],
)
def test_a_factor_1000_between_values_and_device_is_refused(
    setting: str, values: list[float], device: dict[str, Any], fits: str
) -> None:
    from vbatt.ingest.smartme import SmartMeUnitError

    seen: list[str] = []
    handler = _unit_handler(values, device, seen)
    with mock_client(handler, obis_value_unit=setting, conn_id="smartme_x") as client:
        with pytest.raises(SmartMeUnitError) as err:
            client.readings(
                "M1", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 1, tzinfo=UTC)
            )
    message = str(err.value)
    assert "obis_value_unit" in message and "smartme_x" in message
    assert f"set obis_value_unit to {fits} " in message


def test_units_are_checked_once_per_meter_and_a_young_meter_is_not_refused() -> None:
    seen: list[str] = []
    # a week-old meter: 0.2 kWh in its first hour, 250 kWh now; a day-old value is not "recent"
    device = {"counterReadingImport": 250.0, "valueDate": "2025-01-08T00:00:00Z"}
    handler = _unit_handler([0.1, 0.2], device, seen)
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 1, tzinfo=UTC)
    with mock_client(handler) as client:
        first = client.readings("M1", start, end)
        second = client.readings("M1", start, end)
    assert first == second and len(first.readings) == 2
    assert seen.count("/Devices/M1") == 1
    assert seen.count("/ValuesInPastMultiple/M1") == 2
