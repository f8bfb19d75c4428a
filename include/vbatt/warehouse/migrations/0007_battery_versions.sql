-- Battery terms over time (rule book, "Configuration over time").
--
-- raw.battery_versions is append-only: a version is (battery, valid_from) with the
-- versioned fields; a correction ("replace") is a new record with the same valid_from and a
-- later record_id, so history is kept. The record in force per (battery_id, valid_from) is
-- the newest one (largest record_id; recorded_at says when, recorded_by who: an API key, a
-- user, the CLI). The fixed fields stay on raw.batteries; end_date is set, moved or cleared
-- there, each change recorded in raw.battery_end_dates.
--
-- raw.batteries keeps its versioned columns as a copy of the battery's newest version (the
-- largest valid_from), kept by vbatt.warehouse.versions in the same transaction, so readers
-- that want "the battery's terms" (ingest, API, exports) keep working. The ledger reads the
-- versions (dbt stg_raw__battery_versions); a battery with no version record (a row written
-- straight into raw.batteries by SQL) is read as one version from its start.

create table if not exists {raw}.battery_versions (
    record_id    bigserial        primary key,   -- recording order, also within one transaction
    battery_id   text             not null
        references {raw}.batteries (battery_id) on delete cascade,
    valid_from   date             not null,      -- local date of the battery's timezone
    name         text             not null,
    meter_id     text             not null,
    capacity_kwh double precision not null,
    reset_date   date,
    reset_repeat text             not null,
    recorded_at  timestamptz      not null default clock_timestamp(),
    recorded_by  text             not null,
    reason       text,
    constraint battery_versions_capacity check (capacity_kwh >= 0),
    constraint battery_versions_repeat check (reset_repeat in ('yearly', 'none'))
);
create index if not exists battery_versions_battery
    on {raw}.battery_versions (battery_id, valid_from, record_id);

-- Each change of a battery's end_date (set, moved, cleared), newest last.
create table if not exists {raw}.battery_end_dates (
    record_id   bigserial   primary key,
    battery_id  text        not null references {raw}.batteries (battery_id) on delete cascade,
    end_date    date,
    recorded_at timestamptz not null default clock_timestamp(),
    recorded_by text        not null,
    reason      text
);

-- Versions are kept for ever: a record is never edited (a correction is a new record).
create or replace function {raw}.battery_versions_append_only() returns trigger
language plpgsql as $fn$
begin
    raise exception 'raw.battery_versions is append-only: record a new version instead';
end
$fn$;
drop trigger if exists battery_versions_append_only on {raw}.battery_versions;
create trigger battery_versions_append_only before update on {raw}.battery_versions
    for each row execute function {raw}.battery_versions_append_only();

-- The initial level is checked against the first version's capacity (in Python: a later,
-- smaller version may clip the level; the copy on raw.batteries is the newest version).
alter table {raw}.batteries drop constraint if exists batteries_initial;
alter table {raw}.batteries add constraint batteries_initial_nonnegative
    check (initial_level_kwh >= 0);

-- Every existing battery becomes one version from its start.
insert into {raw}.battery_versions (battery_id, valid_from, name, meter_id, capacity_kwh,
    reset_date, reset_repeat, recorded_at, recorded_by, reason)
select battery_id, start_date, name, meter_id, capacity_kwh, reset_date, reset_repeat,
    updated_at, 'migration 0007', 'the configuration before versions'
from {raw}.batteries as b
where not exists (select 1 from {raw}.battery_versions v where v.battery_id = b.battery_id);
