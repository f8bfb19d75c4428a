{{ config(materialized='view') }}
-- Every meter's quarter hours, whatever the meter sends: from counters (rule book, step 1)
-- or from load profiles. Where both exist for the same quarter hour, the counters win.
select meter_id, interval_start, import_kwh, export_kwh, estimated, computed_at
from {{ ref('int_counter_intervals') }}

union all

select profile.meter_id, profile.interval_start, profile.import_kwh, profile.export_kwh,
       profile.estimated, profile.computed_at
from {{ ref('int_profile_intervals') }} as profile
where not exists (
    select 1
    from {{ ref('int_counter_intervals') }} as counter
    where counter.meter_id = profile.meter_id
      and counter.interval_start = profile.interval_start
)
