-- ids compare byte-wise (collation "C"): every sort and window downstream partitions by them
-- A reading in quarantine (raw.quarantined_readings, written by the quality gates) is left
-- out until it is released; a released reading carries the load id of its release, so the
-- incremental models take it up as newly arrived.
select
    readings.meter_id collate "C" as meter_id,
    readings.ts as reading_at,
    readings.import_kwh,
    readings.export_kwh,
    readings.source,
    readings.ingested_at,
    readings.load_id,
    readings.reading_seq
from {{ source('raw', 'meter_readings') }} as readings
where not exists (
    select 1
    from {{ source('raw', 'quarantined_readings') }} as held
    where held.meter_id = readings.meter_id
      and held.ts = readings.ts
      and held.import_kwh = readings.import_kwh
      and held.export_kwh = readings.export_kwh
)

union all

select
    readings.meter_id collate "C" as meter_id,
    readings.ts as reading_at,
    readings.import_kwh,
    readings.export_kwh,
    readings.source,
    readings.ingested_at,
    released.released_load_id as load_id,
    readings.reading_seq
from {{ source('raw', 'quarantined_readings') }} as released
inner join {{ source('raw', 'meter_readings') }} as readings
    on released.meter_id = readings.meter_id
   and released.ts = readings.ts
   and released.import_kwh = readings.import_kwh
   and released.export_kwh = readings.export_kwh
where released.released_at is not null
