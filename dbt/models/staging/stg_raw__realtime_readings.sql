-- Readings pushed through smart-me's Realtime API (raw.realtime_values rows with both
-- energy registers), renamed like stg_raw__meter_readings. A view: int_meter_readings
-- reads only the few rows it needs from it, by meter and instant, through the index.
-- A reading held in quarantine (identical meter, instant and values) is left out like
-- in stg_raw__meter_readings until it is released.
select
    readings.meter_id,
    readings.value_at as reading_at,
    readings.import_kwh,
    readings.export_kwh,
    'realtime'::text as source,
    readings.received_at as ingested_at,
    readings.reading_seq
from {{ source('raw', 'realtime_values') }} as readings
where readings.import_kwh is not null
  and readings.export_kwh is not null
  and not exists (
      select 1
      from {{ source('raw', 'quarantined_readings') }} as held
      where held.meter_id = readings.meter_id
        and held.ts = readings.value_at
        and held.import_kwh = readings.import_kwh
        and held.export_kwh = readings.export_kwh
        and held.released_at is null
  )
