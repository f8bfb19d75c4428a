-- Battery configuration with the rule book's defaults applied and its local dates turned
-- into instants. The versioned fields (name, meter, capacity, reset) are the newest
-- version's (raw.batteries keeps a copy); the ledger reads stg_raw__battery_versions.
-- config_hash covers the fixed terms only (they change only by SQL, never through the
-- writers): a change of one makes the ledger recompute the battery from its start.
with batteries as (
    select
        -- ids compare byte-wise (collation "C"), as in stg_raw__meter_readings
        battery_id collate "C" as battery_id,
        name,
        partner_id collate "C" as partner_id,
        customer_id collate "C" as customer_id,
        meter_id collate "C" as meter_id,
        coalesce(capacity_kwh, 0) as capacity_kwh,
        start_date,
        reset_date,
        coalesce(reset_repeat, 'yearly') as reset_repeat,
        end_date,
        coalesce(timezone, '{{ var("default_timezone") }}') as timezone,
        coalesce(initial_level_kwh, 0) as initial_level_kwh,
        updated_at
    from {{ source('raw', 'batteries') }}
)

select
    *,
    {{ local_midnight('start_date', 'timezone') }} as start_instant,
    coalesce({{ local_midnight('end_date', 'timezone') }}, 'infinity'::timestamptz) as end_instant,
    case when reset_date is not null
        then {{ local_midnight('reset_date', 'timezone') }} end as first_reset_instant,
    md5(concat_ws('|', start_date::text, timezone, initial_level_kwh::text)) as config_hash
from batteries
