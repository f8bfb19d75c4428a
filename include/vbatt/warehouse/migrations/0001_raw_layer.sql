-- The raw layer: what came in, exactly as it came, append-only.
-- {raw} is replaced by the raw schema's name (raw, or an isolated schema of `vbatt simulate`).

create schema if not exists {raw};

create table if not exists {raw}.loads (
    load_id       bigserial primary key,
    source        text        not null,            -- smartme | csv | mscons | simulate | ...
    origin        text        not null default '', -- file name, API window, ... for people
    started_at    timestamptz not null default now(),
    finished_at   timestamptz,
    rows_received bigint      not null default 0,
    rows_loaded   bigint      not null default 0,  -- new rows appended to meter_readings
    rows_duplicate bigint     not null default 0,  -- identical to a row already stored
    rows_rejected bigint      not null default 0
);

create table if not exists {raw}.meter_readings (
    meter_id    text             not null,
    ts          timestamptz      not null,
    import_kwh  double precision not null,
    export_kwh  double precision not null,
    source      text             not null,
    ingested_at timestamptz      not null default now(),
    load_id     bigint           not null references {raw}.loads (load_id),
    -- ingestion order, also within one load: the newest version of a conflict wins
    reading_seq bigint           generated always as identity,
    constraint meter_readings_nonnegative check (import_kwh >= 0 and export_kwh >= 0),
    constraint meter_readings_finite check (
        import_kwh < 'infinity'::float8 and export_kwh < 'infinity'::float8
    )
);
-- The same reading twice is one row; a different value at the same instant is a second
-- row (a conflict, resolved downstream: the newest ingested wins).
create unique index if not exists meter_readings_identity
    on {raw}.meter_readings (meter_id, ts, import_kwh, export_kwh);
create index if not exists meter_readings_load on {raw}.meter_readings (load_id);

create table if not exists {raw}.rejected_readings (
    rejected_at timestamptz not null default now(),
    load_id     bigint      references {raw}.loads (load_id),
    source      text        not null,
    location    text        not null default '',   -- file:line:column, URL, segment
    meter_id    text,
    record      text        not null,              -- the input as received
    reason      text        not null
);

create table if not exists {raw}.batteries (
    battery_id        text             primary key,
    name              text             not null,
    partner_id        text             not null,
    customer_id       text             not null,
    meter_id          text             not null,
    capacity_kwh      double precision not null default 0,
    start_date        date             not null,
    reset_date        date,
    reset_repeat      text             not null default 'yearly',
    end_date          date,
    timezone          text             not null default 'Europe/Zurich',
    initial_level_kwh double precision not null default 0,
    updated_at        timestamptz      not null default now(),
    constraint batteries_capacity check (capacity_kwh >= 0),
    constraint batteries_repeat check (reset_repeat in ('yearly', 'none')),
    constraint batteries_initial check (
        initial_level_kwh >= 0 and (capacity_kwh = 0 or initial_level_kwh <= capacity_kwh)
    ),
    constraint batteries_dates check (end_date is null or end_date > start_date)
);
