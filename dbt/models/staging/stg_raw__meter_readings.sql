-- ids compare byte-wise (collation "C"): every sort and window downstream partitions by them
select
    meter_id collate "C" as meter_id,
    ts as reading_at,
    import_kwh,
    export_kwh,
    source,
    ingested_at,
    load_id,
    reading_seq
from {{ source('raw', 'meter_readings') }}
