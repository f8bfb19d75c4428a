-- The versions in force of every battery (rule book, "Configuration over time"), with
-- their validity as instants and the battery's fixed fields, so the ledger reads one model.
--
-- Per (battery, valid_from) the newest record is in force (a correction is a newer record,
-- raw.battery_versions is append-only). A version applies from 00:00 local of its
-- valid_from (a midnight that does not exist, a DST jump at 00:00, is the first instant of
-- that day: PostgreSQL reads a skipped local time with the offset before the jump, which
-- is the jump's instant) to the next version's, the last one to the battery's end.
-- A battery with no record (written into raw.batteries by SQL) is one version from its start.
-- config_hash identifies what the ledger computed a row with: the battery's fixed terms
-- and the version's fields; the incremental ledger compares it with its stored rows.
with batteries as (

    select * from {{ ref('stg_raw__batteries') }}

),

versions as (

    select * from {{ source('raw', 'battery_versions') }}

),

records as (

    select
        battery_id collate "C" as battery_id,
        valid_from,
        name,
        meter_id collate "C" as meter_id,
        capacity_kwh,
        reset_date,
        reset_repeat,
        record_id,
        recorded_at
    from versions
    union all
    select
        batteries.battery_id,
        batteries.start_date,
        batteries.name,
        batteries.meter_id,
        batteries.capacity_kwh,
        batteries.reset_date,
        batteries.reset_repeat,
        null::bigint,
        batteries.updated_at
    from batteries
    where not exists (select 1 from versions where versions.battery_id = batteries.battery_id)

),

in_force as (

    select distinct on (battery_id, valid_from) *
    from records
    order by battery_id, valid_from, record_id desc nulls last

),

bounded as (

    select
        in_force.battery_id,
        in_force.valid_from,
        lead(in_force.valid_from) over (
            partition by in_force.battery_id order by in_force.valid_from
        ) as valid_until,
        in_force.name,
        in_force.meter_id,
        coalesce(in_force.capacity_kwh, 0) as capacity_kwh,
        in_force.reset_date,
        coalesce(in_force.reset_repeat, 'yearly') as reset_repeat,
        in_force.record_id,
        in_force.recorded_at,
        batteries.partner_id,
        batteries.customer_id,
        batteries.timezone,
        batteries.start_date,
        batteries.end_date,
        batteries.initial_level_kwh,
        batteries.start_instant,
        batteries.end_instant,
        batteries.config_hash as battery_hash
    from in_force
    inner join batteries on in_force.battery_id = batteries.battery_id
    -- the writers refuse versions outside [start_date, end_date); rows written by SQL too
    where in_force.valid_from >= batteries.start_date
      and (batteries.end_date is null or in_force.valid_from < batteries.end_date)

)

select
    battery_id,
    row_number() over (partition by battery_id order by valid_from)::int as version_number,
    valid_from,
    valid_until,
    {{ local_midnight('valid_from', 'timezone') }} as valid_from_instant,
    coalesce({{ local_midnight('valid_until', 'timezone') }}, end_instant) as valid_until_instant,
    name,
    meter_id,
    capacity_kwh,
    reset_date,
    reset_repeat,
    partner_id,
    customer_id,
    timezone,
    start_date,
    end_date,
    initial_level_kwh,
    start_instant,
    end_instant,
    record_id,
    recorded_at,
    md5(concat_ws('|',
        battery_hash, valid_from::text, meter_id, capacity_kwh::text, reset_date::text,
        reset_repeat
    )) as config_hash
from bounded
