-- Data quality gates (Great Expectations): every checkpoint run with its outcome, each
-- failed expectation of it, and the readings held back from the ledger (quarantine).

create table if not exists {raw}.quality_runs (
    run_id         bigserial   primary key,
    checkpoint     text        not null,             -- after_ingest | after_ledger | before_export
    scope          text        not null default '',  -- e.g. the partner of an export check
    started_at     timestamptz not null default now(),
    finished_at    timestamptz,
    outcome        text        not null,             -- running | passed | warned | blocked
    -- after_ledger: the ledger's newest computed_at covered, where the next run starts
    checked_computed_at timestamptz,
    summary        text        not null default '',
    data_docs      text        not null default '',
    -- a run that stays 'running' crashed (its task failed with the error)
    constraint quality_runs_outcome check (outcome in ('running', 'passed', 'warned', 'blocked'))
);
create index if not exists quality_runs_checkpoint on {raw}.quality_runs (checkpoint, run_id);
create index if not exists quality_runs_started on {raw}.quality_runs (started_at);

-- The loads the after_ingest gate has looked at: a set, not a high-water mark, so a load
-- that commits after a later one (file drops beside the API ingest) is still checked.
create table if not exists {raw}.quality_checked_loads (
    load_id bigint primary key references {raw}.loads (load_id),
    run_id  bigint not null references {raw}.quality_runs (run_id)
);

create table if not exists {raw}.quality_failures (
    run_id           bigint  not null references {raw}.quality_runs (run_id),
    suite            text    not null,
    expectation      text    not null,
    level            text    not null,             -- warn | block
    unexpected_count bigint,
    examples         text    not null default '',  -- a few offending rows, as JSON
    constraint quality_failures_level check (level in ('warn', 'block'))
);
create index if not exists quality_failures_run on {raw}.quality_failures (run_id);

-- A reading held back by a row-level expectation: the staging model leaves it out until
-- it is released. The reading itself stays in meter_readings (append-only); a release
-- gets a load of its own so the incremental models pick the reading up again.
create table if not exists {raw}.quarantined_readings (
    meter_id         text             not null,
    ts               timestamptz      not null,
    import_kwh       double precision not null,
    export_kwh       double precision not null,
    load_id          bigint           not null references {raw}.loads (load_id),
    reason           text             not null,   -- the expectation's name
    run_id           bigint           references {raw}.quality_runs (run_id),
    quarantined_at   timestamptz      not null default now(),
    released_at      timestamptz,
    released_load_id bigint           references {raw}.loads (load_id),
    primary key (meter_id, ts, import_kwh, export_kwh)
);
create index if not exists quarantined_readings_held
    on {raw}.quarantined_readings (meter_id, ts) where released_at is null;
