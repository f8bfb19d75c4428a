-- smart-me Realtime API pushes (docs/realtime.md): every value answered 2xx, append-only,
-- in a layout that stays cheap at one push per meter and second (86,400 rows a meter-day).

-- One row per pushed DeviceData item of a known meter: the three registers the product
-- uses (the others are counted, not stored). A reading is a row with both energy
-- registers. Partitioned by the UTC day of value_at; partitions are created on demand by
-- vbatt.warehouse.realtime (no default partition, so creating one never scans).
create table if not exists {raw}.realtime_values (
    meter_id    text collate "C" not null,
    value_at    timestamptz      not null,          -- the device's time, microseconds
    import_kwh  double precision,                   -- 1-0:1.8.0, cumulative
    export_kwh  double precision,                   -- 1-0:2.8.0, cumulative
    power_kw    double precision,                   -- 1-0:16.7.0, + import, - export
    received_at timestamptz      not null,
    -- drawn from meter_readings' sequence: "the newest ingested wins" spans both sources
    reading_seq bigint           not null,
    constraint realtime_values_nonnegative check (import_kwh >= 0 and export_kwh >= 0),
    constraint realtime_values_finite check (
        import_kwh < 'infinity'::float8 and export_kwh < 'infinity'::float8
        and power_kw < 'infinity'::float8 and power_kw > '-infinity'::float8
    )
) partition by range (value_at);
-- The same push twice is one row (a retry, a duplicate); a different value at the same
-- instant is a second row (a conflict: the newest wins, as for meter_readings). The same
-- index serves step 1's lookups by meter and instant.
create unique index if not exists realtime_values_identity
    on {raw}.realtime_values (meter_id, value_at, import_kwh, export_kwh, power_kw)
    nulls not distinct;

-- Per meter and UTC quarter hour: the first and the last reading instant. Step 1 needs
-- only the readings bracketing each boundary (first and last of each quarter hour) plus
-- those around counter drops (realtime_marks): it looks them up here and reads those rows
-- through the index, so its cost does not grow with the push rate. changed_xid is the
-- transaction of the latest change: the readings model takes up every row changed by a
-- transaction its previous run could not see (no lost update, whatever the commit order).
create table if not exists {raw}.realtime_quarters (
    meter_id       text collate "C" not null,
    interval_start timestamptz      not null,
    first_at       timestamptz      not null,
    last_at        timestamptz      not null,
    readings       bigint           not null,       -- reading rows stored in it
    changed_xid    xid8             not null default pg_current_xact_id(),
    primary key (meter_id, interval_start)
);
create index if not exists realtime_quarters_changed on {raw}.realtime_quarters (changed_xid);

-- Reading instants step 1 must look at with their neighbours: a reading lower than the
-- one before it (a counter drop), one that arrived out of order, or a second version of
-- an instant. Written by the receiver when it stores the reading; append-only.
create table if not exists {raw}.realtime_marks (
    meter_id text collate "C" not null,
    value_at timestamptz      not null,
    reason   text             not null,             -- drop | out_of_order | version
    marked_at timestamptz     not null default now()
);
create index if not exists realtime_marks_meter on {raw}.realtime_marks (meter_id, value_at);

-- Per meter, the newest reading stored (time order): what the next in-order reading is
-- compared with to find a counter drop without reading the big table.
create table if not exists {raw}.realtime_cursor (
    meter_id   text collate "C" primary key,
    reading_at timestamptz      not null,
    import_kwh double precision not null,
    export_kwh double precision not null
);

-- The latest live state per meter (what the live battery reads): value_at is the time of
-- the newest push; each register holds its newest value (a push without it keeps the
-- previous one). power_kw: kW, + = import from the grid, - = export.
create table if not exists {raw}.meter_live (
    meter_id    text collate "C" primary key,
    value_at    timestamptz not null,
    power_kw    double precision,
    import_kwh  double precision,
    export_kwh  double precision,
    received_at timestamptz not null
);

-- What the receiver took in, per minute: pushes, items, values stored, and what it
-- accepted but ignored (unknown devices, unused OBIS codes) or refused.
create table if not exists {raw}.realtime_intake (
    minute          timestamptz primary key,
    bodies          bigint not null default 0,
    items           bigint not null default 0,
    rows_stored     bigint not null default 0,    -- new realtime_values rows
    rows_duplicate  bigint not null default 0,    -- identical to a stored row
    readings        bigint not null default 0,    -- of the stored rows, with both registers
    live_only       bigint not null default 0,    -- of the stored rows, without both
    unknown_devices bigint not null default 0,    -- items of a device no battery uses
    unused_values   bigint not null default 0,    -- values of OBIS codes not used
    rejected        bigint not null default 0     -- values refused (raw.rejected_readings)
);
