-- Load profiles (quarter-hour energies, e.g. MSCONS), per-meter ingest watermarks, and
-- the register of dropped files.

create table if not exists {raw}.interval_energies (
    meter_id       text             not null,
    interval_start timestamptz      not null,
    interval_end   timestamptz      not null,
    register       text             not null,
    kwh            double precision not null,
    substitute     boolean          not null default false,
    source         text             not null,
    ingested_at    timestamptz      not null default now(),
    load_id        bigint           not null references {raw}.loads (load_id),
    energy_seq     bigint           generated always as identity,
    constraint interval_energies_register check (register in ('import', 'export')),
    constraint interval_energies_nonnegative check (kwh >= 0 and kwh < 'infinity'::float8),
    constraint interval_energies_order check (interval_end > interval_start)
);
-- A re-sent identical value is one row; a corrected value is a new version.
create unique index if not exists interval_energies_identity
    on {raw}.interval_energies (meter_id, interval_start, register, kwh, substitute);
create index if not exists interval_energies_load on {raw}.interval_energies (load_id);

-- What is complete: every reading of the meter up to complete_until has been fetched.
create table if not exists {raw}.ingest_watermarks (
    source         text        not null,
    meter_id       text        not null,
    complete_until timestamptz not null,
    updated_at     timestamptz not null default now(),
    primary key (source, meter_id)
);

-- Every file that was dropped, loaded or refused; the same file twice is loaded once.
create table if not exists {raw}.files (
    sha256      text        primary key,
    file_name   text        not null,
    kind        text        not null,              -- readings_csv | mscons
    status      text        not null,              -- loaded | refused
    reason      text        not null default '',
    warnings    text        not null default '',
    load_id     bigint      references {raw}.loads (load_id),
    received_at timestamptz not null default now()
);
