"""Readings into ``raw.meter_readings``: the big-load way (COPY straight in, the indexes
built afterwards) and the staged way (bounded dedupe, one ordered insert) store the same.

``BIG_LOAD`` is lowered so that a file of a few rows takes the big-load way. Each test
checks what a reader of the raw table sees: the rows, their order of ingestion (the
newest version of a conflict wins), the counts of the load, and that the table has its
indexes and foreign key again and stays logged (it must survive a crash of the server).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from vbatt.ingest.load import ingest_file
from vbatt.readings import Reading
from vbatt.warehouse import loader

START = datetime(2025, 6, 1, tzinfo=UTC)


def _line(meter: str, k: int, value: float) -> str:
    ts = (START + timedelta(minutes=15 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{meter},{ts},{value},{value / 2}"


def _write(path, lines: list[str]):
    path.write_text("meter_id,timestamp,import_kwh,export_kwh\n" + "\n".join(lines) + "\n")
    return path


def _stored(engine, raw: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "select meter_id, ts, import_kwh, export_kwh, source, load_id"
                    f" from {raw}.meter_readings order by reading_seq"
                )
            )
        ]


def _shape(engine, raw: str) -> dict:
    """The table's indexes, constraints and persistence, as the migrations made them."""
    table = f"{raw}.meter_readings"
    with engine.connect() as conn:
        indexes = conn.execute(
            text(
                "select pg_get_indexdef(indexrelid) from pg_index"
                " where indrelid = cast(:t as regclass) order by 1"
            ),
            {"t": table},
        ).scalars()
        constraints = conn.execute(
            text(
                "select conname, pg_get_constraintdef(oid), convalidated from pg_constraint"
                " where conrelid = cast(:t as regclass) order by 1"
            ),
            {"t": table},
        ).all()
        persistence = conn.execute(
            text("select relpersistence from pg_class where oid = cast(:t as regclass)"),
            {"t": table},
        ).scalar_one()
        defaults = conn.execute(
            text(
                "select column_name, column_default from information_schema.columns"
                " where table_schema = :s and table_name = 'meter_readings' order by 1"
            ),
            {"s": raw},
        ).all()
    return {
        "indexes": list(indexes),
        "constraints": [tuple(c) for c in constraints],
        "persistence": persistence,
        "defaults": [tuple(d) for d in defaults],
    }


def test_a_big_load_goes_straight_in_and_the_table_keeps_its_shape(
    engine, raw, tmp_path, monkeypatch
):
    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    shape = _shape(engine, raw)
    lines = [_line(f"M{m}", k, 10 * m + k) for m in (2, 1) for k in range(4)]
    outcome = ingest_file(engine, _write(tmp_path / "r.csv", lines), raw_schema=raw)
    assert outcome.way == "line pattern, copied into raw"
    assert (outcome.received, outcome.loaded, outcome.rejected) == (8, 8, 0)
    stored = _stored(engine, raw)
    assert [(r[0], r[2]) for r in stored] == [
        (f"M{m}", 10.0 * m + k) for m in (2, 1) for k in range(4)
    ]  # in file order
    assert {(r[4], r[5]) for r in stored} == {("csv", outcome.load_id)}
    assert _shape(engine, raw) == shape
    with engine.connect() as conn:
        analysed = conn.execute(
            text("select reltuples from pg_class where oid = cast(:t as regclass)"),
            {"t": f"{raw}.meter_readings"},
        ).scalar_one()
    assert analysed == 8


def _file_node(engine, raw: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("select pg_relation_filenode(cast(:t as regclass))"),
            {"t": f"{raw}.meter_readings"},
        ).scalar_one()


def test_a_big_load_into_an_empty_table_writes_a_new_file_and_keeps_stored_rows(
    engine, raw, tmp_path, monkeypatch
):
    """wal_level minimal (the embedded warehouse): into an empty table, the copy goes to a
    file new in its transaction (no WAL for the rows or the index builds); into a table
    that holds rows, never: they stay where they are, with the new ones after them."""
    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    with engine.connect() as conn:
        assert conn.execute(text("show wal_level")).scalar_one() == "minimal"
    empty = _file_node(engine, raw)
    first = ingest_file(engine, _write(tmp_path / "a.csv", [_line("M1", 0, 1)]), raw_schema=raw)
    assert first.way == "line pattern, copied into raw"
    filled = _file_node(engine, raw)
    assert filled != empty
    lines = [_line("M1", k, k + 1) for k in range(1, 5)]
    second = ingest_file(engine, _write(tmp_path / "b.csv", lines), raw_schema=raw)
    assert second.way == "line pattern, copied into raw"
    assert _file_node(engine, raw) == filled
    assert [(r[2], r[5]) for r in _stored(engine, raw)] == [(1.0, first.load_id)] + [
        (k + 1.0, second.load_id) for k in range(1, 5)
    ]


def test_a_big_load_with_duplicates_is_staged_and_counts_them(engine, raw, tmp_path, monkeypatch):
    """The unique index refuses the straight copy; the staged way keeps the first of
    identical rows, both versions of a conflict, the later one ingested later."""
    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    shape = _shape(engine, raw)
    lines = [
        _line("M1", 0, 1),
        _line("M1", 1, 2),
        _line("M1", 0, 5),  # a second version of M1 at k=0: a conflict, kept
        _line("M1", 0, 1),  # identical to the first line: a duplicate
        _line("M0", 0, 3),
    ]
    outcome = ingest_file(engine, _write(tmp_path / "r.csv", lines), raw_schema=raw)
    assert outcome.way == "line pattern, staged"
    assert (outcome.received, outcome.loaded) == (5, 4)
    stored = _stored(engine, raw)
    # ordered by the table's key; within an instant in file order (the newest wins)
    assert [(r[0], r[2]) for r in stored] == [("M0", 3.0), ("M1", 1.0), ("M1", 5.0), ("M1", 2.0)]
    assert _shape(engine, raw) == shape
    with engine.connect() as conn:
        load = conn.execute(
            text(f"select rows_loaded, rows_duplicate from {raw}.loads where load_id = :i"),
            {"i": outcome.load_id},
        ).one()
    assert tuple(load) == (4, 1)


def test_a_big_load_does_not_wait_for_a_busy_table(engine, raw, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    shape = _shape(engine, raw)
    with engine.connect() as reader:
        reader.execute(text(f"select count(*) from {raw}.meter_readings"))  # holds its lock
        started = time.monotonic()
        outcome = ingest_file(
            engine,
            _write(tmp_path / "r.csv", [_line("M1", k, k) for k in range(5)]),
            raw_schema=raw,
        )
        assert time.monotonic() - started < 30
        reader.rollback()
    assert outcome.way == "line pattern, staged" and outcome.loaded == 5
    assert len(_stored(engine, raw)) == 5
    assert _shape(engine, raw) == shape


def _readings(pairs) -> list[Reading]:
    return [
        Reading(meter, START + timedelta(minutes=15 * k), float(value), 0.0)
        for meter, k, value in pairs
    ]


def test_the_staged_way_keeps_only_what_is_new(engine, raw):
    first = loader.load_readings(
        engine, _readings([("M1", 0, 1), ("M1", 1, 2), ("M2", 0, 3)]), source="t", raw_schema=raw
    )
    again = loader.load_readings(
        engine,
        _readings([("M1", 1, 2), ("M1", 1, 9), ("M2", 0, 3), ("M2", 1, 4), ("M2", 1, 4)]),
        source="t",
        raw_schema=raw,
    )
    assert (first.loaded, first.duplicate) == (3, 0)
    assert (again.received, again.loaded, again.duplicate) == (5, 2, 3)
    stored = _stored(engine, raw)
    assert [(r[0], r[1], r[2], r[5]) for r in stored[3:]] == [
        ("M1", START + timedelta(minutes=15), 9.0, again.load_id),
        ("M2", START + timedelta(minutes=15), 4.0, again.load_id),
    ]


def test_rows_a_concurrent_load_stores_first_count_as_duplicates(engine, raw):
    """The dedupe cannot see another load's rows until it commits: the insert then hits
    the unique index, and the savepoint retries it with ``on conflict do nothing``."""
    other = engine.connect()
    other.execute(text(f"insert into {raw}.loads (load_id, source) values (-1, 'other')"))
    other.execute(
        text(
            f"insert into {raw}.meter_readings (meter_id, ts, import_kwh, export_kwh, source,"
            " load_id) values ('M1', :ts, 2, 0, 'other', -1)"
        ),
        {"ts": START + timedelta(minutes=15)},
    )
    result: dict = {}

    def load() -> None:
        result["load"] = loader.load_readings(
            engine,
            _readings([("M1", 0, 1), ("M1", 1, 2), ("M1", 2, 3)]),
            source="t",
            raw_schema=raw,
        )

    thread = threading.Thread(target=load)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        with engine.connect() as watch:  # our insert waits on the other's row
            while not watch.execute(
                text("select exists (select from pg_locks where not granted)")
            ).scalar_one():
                assert time.monotonic() < deadline, "the load never waited on the other"
                time.sleep(0.05)
        other.commit()
    finally:
        thread.join(60)
        other.close()
    assert (result["load"].loaded, result["load"].duplicate) == (2, 1)
    assert sorted((r[1], r[4]) for r in _stored(engine, raw)) == [
        (START, "t"),
        (START + timedelta(minutes=15), "other"),
        (START + timedelta(minutes=30), "t"),
    ]


def _key_oid(engine, raw: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "select oid from pg_constraint where contype = 'f'"
                " and conrelid = cast(:t as regclass)"
            ),
            {"t": f"{raw}.meter_readings"},
        ).scalar_one()


def _sequence(engine, raw: str) -> tuple[str, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "select seqrelid::regclass::text, seqcache from pg_sequence where seqrelid"
                    " = cast(pg_get_serial_sequence(:t, 'reading_seq') as regclass)"
                ),
                {"t": f"{raw}.meter_readings"},
            ).one()
        )


def _seqs(engine, raw: str, load_id: int) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    f"select reading_seq from {raw}.meter_readings where load_id = :l"
                    " order by reading_seq"
                ),
                {"l": load_id},
            ).scalars()
        )


def test_a_big_load_keeps_the_foreign_key_and_ingestion_order(
    warehouse_url, raw, tmp_path, monkeypatch
):
    """As a superuser (the embedded warehouse) the foreign key stays in place, validated,
    and is not checked row by row during the COPY; the load draws its ``reading_seq``
    values in blocks, and afterwards nothing of a block is left to a later row: a row
    stored after another session drew a value still comes after that value."""
    from sqlalchemy import create_engine

    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    one = create_engine(warehouse_url, pool_size=1, max_overflow=0)  # always one session
    other = create_engine(warehouse_url)
    try:
        shape, key, sequence = _shape(one, raw), _key_oid(one, raw), _sequence(one, raw)
        big = ingest_file(
            one, _write(tmp_path / "a.csv", [_line("M1", k, k) for k in range(6)]), raw_schema=raw
        )
        assert big.way == "line pattern, copied into raw"
        assert (_shape(one, raw), _key_oid(one, raw), _sequence(one, raw)) == (
            shape,
            key,
            sequence,
        )
        first = _seqs(one, raw, big.load_id)
        assert first == sorted(first) and len(set(first)) == 6
        with other.begin() as conn:
            drawn = conn.execute(text("select nextval(:s)"), {"s": sequence[0]}).scalar_one()
        assert drawn > max(first)
        with one.connect() as conn:
            assert conn.execute(text("show session_replication_role")).scalar_one() == "origin"
        small = loader.load_readings(one, _readings([("M1", 9, 9)]), source="t", raw_schema=raw)
        assert _seqs(one, raw, small.load_id)[0] > drawn
    finally:
        one.dispose()
        other.dispose()


def test_a_big_load_does_not_wait_for_the_sequence(engine, raw, tmp_path, monkeypatch):
    """Another session in the middle of drawing from the sequence (the realtime receiver's
    open transaction): the load gives way after ``SEQUENCE_LOCK_WAIT`` and draws value by
    value, as before; the other session's value stays below the load's."""
    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    sequence = _sequence(engine, raw)
    with engine.connect() as receiver:
        drawn = receiver.execute(text("select nextval(:s)"), {"s": sequence[0]}).scalar_one()
        outcome = ingest_file(
            engine,
            _write(tmp_path / "r.csv", [_line("M1", k, k) for k in range(3)]),
            raw_schema=raw,
        )
        receiver.rollback()
    assert outcome.way == "line pattern, copied into raw" and outcome.loaded == 3
    assert min(_seqs(engine, raw, outcome.load_id)) > drawn
    assert _sequence(engine, raw) == sequence


def test_a_big_load_without_the_right_to_skip_row_triggers_checks_the_key(
    engine, warehouse_url, raw, tmp_path, monkeypatch
):
    """A role that may not set ``session_replication_role`` (a warehouse elsewhere, not
    the superuser): the foreign key is dropped and added back, checked over the table."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    role = f"{raw}_loader"
    with engine.begin() as conn:
        conn.execute(text(f"create role {role} login"))
        conn.execute(text(f"grant all on schema {raw} to {role}"))
        conn.execute(text(f"grant all on all tables in schema {raw} to {role}"))
        conn.execute(text(f"grant all on all sequences in schema {raw} to {role}"))
        for table in ("meter_readings", "loads"):
            conn.execute(text(f"alter table {raw}.{table} owner to {role}"))
    limited = create_engine(make_url(warehouse_url).set(username=role))
    try:
        shape, key = _shape(engine, raw), _key_oid(engine, raw)
        outcome = ingest_file(
            limited,
            _write(tmp_path / "r.csv", [_line("M1", k, k) for k in range(4)]),
            raw_schema=raw,
        )
        assert outcome.way == "line pattern, copied into raw" and outcome.loaded == 4
        assert _shape(engine, raw) == shape  # the key back, validated
        assert _key_oid(engine, raw) != key  # ... a new one: it was dropped and checked
    finally:
        limited.dispose()
        with engine.begin() as conn:
            for table in ("meter_readings", "loads"):
                conn.execute(text(f"alter table {raw}.{table} owner to current_user"))
            conn.execute(text(f"drop owned by {role}"))
            conn.execute(text(f"drop role {role}"))


def test_a_big_load_that_falls_back_leaves_no_values_drawn_ahead(
    warehouse_url, raw, tmp_path, monkeypatch
):
    """A duplicate in the file rolls the straight copy back (and with it the sequence's
    block setting) and stages the rows: the values the session had drawn ahead are
    discarded, so what it stores next still comes after what others drew meanwhile."""
    from sqlalchemy import create_engine

    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    one = create_engine(warehouse_url, pool_size=1, max_overflow=0)
    other = create_engine(warehouse_url)
    try:
        sequence = _sequence(one, raw)
        lines = [_line("M1", k, k) for k in range(4)] + [_line("M1", 0, 0)]
        staged = ingest_file(one, _write(tmp_path / "d.csv", lines), raw_schema=raw)
        assert staged.way == "line pattern, staged" and staged.loaded == 4
        with other.begin() as conn:
            drawn = conn.execute(text("select nextval(:s)"), {"s": sequence[0]}).scalar_one()
        small = loader.load_readings(one, _readings([("M1", 9, 9)]), source="t", raw_schema=raw)
        assert _seqs(one, raw, small.load_id)[0] > drawn
        assert _sequence(one, raw) == sequence
    finally:
        one.dispose()
        other.dispose()


def test_a_big_load_fires_a_trigger_of_the_table(engine, raw, tmp_path, monkeypatch):
    """A trigger someone added to the table (none is made by the migrations) still fires
    for every copied row: the per-row checks are then kept on, and the key is dropped and
    checked over the table instead."""
    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    with engine.begin() as conn:
        conn.execute(text(f"create table {raw}.seen (n bigint)"))
        conn.execute(
            text(
                f"create function {raw}.count_row() returns trigger language plpgsql as"
                f" $$ begin insert into {raw}.seen values (new.reading_seq); return null; end $$"
            )
        )
        conn.execute(
            text(
                f"create trigger count_row after insert on {raw}.meter_readings"
                f" for each row execute function {raw}.count_row()"
            )
        )
    key = _key_oid(engine, raw)
    outcome = ingest_file(
        engine, _write(tmp_path / "r.csv", [_line("M1", k, k) for k in range(5)]), raw_schema=raw
    )
    assert outcome.way == "line pattern, copied into raw" and outcome.loaded == 5
    with engine.connect() as conn:
        assert conn.execute(text(f"select count(*) from {raw}.seen")).scalar_one() == 5
    assert _key_oid(engine, raw) != key


def test_stored_readings_are_copied_as_stored_into_a_slice(engine, raw, tmp_path, monkeypatch):
    """`vbatt simulate` in slices: a slice's raw layer gets its meters' readings with
    their load, ingestion time and order, and its table keeps the migrations' shape."""
    from vbatt.warehouse.migrate import migrate

    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    lines = [_line(f"M{m}", k, 10 * m + k) for m in (1, 2, 3) for k in range(3)]
    ingest_file(engine, _write(tmp_path / "a.csv", lines), raw_schema=raw)
    newer = [_line("M2", 1, 99.0), _line("M3", 0, 98.0)]  # later versions of two readings
    ingest_file(engine, _write(tmp_path / "b.csv", newer), raw_schema=raw)
    target = raw.replace("_raw", "_s0_raw")
    migrate(engine, target)
    shape = _shape(engine, target)
    try:
        with engine.begin() as conn:
            copied = loader.copy_stored_readings(conn, raw, target, ["M2", "M3"])
        assert copied == 8
        columns = "meter_id, ts, import_kwh, export_kwh, source, ingested_at, load_id, reading_seq"
        with engine.connect() as conn:
            source, sliced = (
                conn.execute(
                    text(
                        f"select {columns} from {schema}.meter_readings"
                        " where meter_id <> 'M1' order by reading_seq"
                    )
                ).all()
                for schema in (raw, target)
            )
            loads = [
                conn.execute(text(f"select * from {schema}.loads order by load_id")).all()
                for schema in (raw, target)
            ]
        assert sliced == source and len(sliced) == 8
        assert loads[0] == loads[1]
        assert _shape(engine, target) == shape
        # a later load into the slice comes after the copied ones
        with engine.begin() as conn:
            load_id = loader.begin_load(conn, target, "test", "later")
            conn.execute(
                text(
                    f"insert into {target}.meter_readings (meter_id, ts, import_kwh, export_kwh,"
                    " source, load_id) values ('M2', now(), 1, 1, 'test', :l)"
                ),
                {"l": load_id},
            )
            last = conn.execute(
                text(f"select meter_id from {target}.meter_readings order by reading_seq desc")
            ).first()
        assert load_id > max(row[0] for row in loads[0]) and last == ("M2",)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"drop schema {target} cascade"))
