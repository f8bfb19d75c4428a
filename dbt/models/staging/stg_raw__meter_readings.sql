select
    meter_id,
    ts as reading_at,
    import_kwh,
    export_kwh,
    source,
    ingested_at,
    load_id,
    reading_seq
from {{ source('raw', 'meter_readings') }}
