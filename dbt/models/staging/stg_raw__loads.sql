select
    load_id,
    source,
    origin,
    started_at,
    finished_at,
    rows_received,
    rows_loaded,
    rows_duplicate,
    rows_rejected
from {{ source('raw', 'loads') }}
