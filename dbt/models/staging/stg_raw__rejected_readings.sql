select
    rejected_at,
    load_id,
    source,
    location,
    meter_id,
    record,
    reason
from {{ source('raw', 'rejected_readings') }}
