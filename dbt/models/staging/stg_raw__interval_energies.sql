select
    meter_id collate "C" as meter_id,
    interval_start,
    interval_end,
    register,
    kwh,
    substitute,
    source,
    ingested_at,
    load_id,
    energy_seq
from {{ source('raw', 'interval_energies') }}
