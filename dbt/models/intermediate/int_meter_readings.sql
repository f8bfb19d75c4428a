{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['meter_id', 'reading_at'],
        on_schema_change='fail',
        post_hook='{{ analyze_if_changed() }}',
        pre_hook="select pg_advisory_xact_lock(hashtext('vbatt-readings-intake'))",
        indexes=[
            {'columns': ['meter_id', 'reading_at'], 'unique': True},
            {'columns': ['computed_at']},
        ],
    )
}}
-- The pre-hook's lock is held until this model commits: the ingest quality gate takes the
-- same lock before it quarantines readings (vbatt.quality.quarantine), so a reading is
-- either held back before the ledger reads it or counted as already taken in, never both.
--
-- Rule book, step 1.1 and 1.2: one reading per meter and instant (the newest ingested
-- wins a conflict; identical copies from two sources are one) and counters rebased over
-- drops, so the series never decreases.
-- Sources: every polled or loaded reading (stg_raw__meter_readings) and, of the realtime
-- pushes, only the readings step 1 needs (macro realtime_readings_needed: those
-- bracketing each quarter hour and around counter drops), so the cost does not grow with
-- the push rate; the result is the same as from every reading (docs/realtime.md).
-- Incremental: a meter with new loads or changed realtime quarter hours is recomputed from
-- its last stored reading before the earliest change, continuing that reading's offsets.

{#- the anchor's values ride along with each candidate reading of its meter (incremental
    runs): joined back after the windows, the planner saw one row where there were
    thousands (estimates shrink through every window filter) and compared every reading
    with every anchor, 434 s for a day of 10,000 meters (docs/scaling.md) -#}
{%- set anchor_values = ['anchor_import_raw_kwh', 'anchor_export_raw_kwh',
                         'anchor_import_offset_kwh', 'anchor_export_offset_kwh'] -%}
{%- set carried = (', ' ~ anchor_values | join(', ')) if is_incremental() else '' %}

with source as not materialized (

    select * from {{ ref('stg_raw__meter_readings') }}

),

{% if is_incremental() %}

run as (

    -- the load watermark: only the loads after the previous run's (their index), not a
    -- max over every reading of the history
    select greatest({{ last_max_load_id() }}, max(load_id)) as max_load_id
    from source
    where load_id > {{ last_max_load_id() }}

),

changed as (

    select meter_id, min(changed_from) as changed_from
    from (
        select meter_id, min(reading_at) as changed_from
        from source
        where load_id > {{ last_max_load_id() }}
        group by meter_id
        union all
        -- realtime quarter hours changed by a transaction the previous run could not see
        select meter_id, min(interval_start)
        from {{ source('raw', 'realtime_quarters') }}
        where changed_xid >= {{ last_realtime_xmin() }}
        group by meter_id
    ) as changes
    group by meter_id

),

anchors as (

    select
        changed.meter_id,
        anchor.reading_at as anchor_at,
        anchor.import_raw_kwh as anchor_import_raw_kwh,
        anchor.export_raw_kwh as anchor_export_raw_kwh,
        anchor.import_offset_kwh as anchor_import_offset_kwh,
        anchor.export_offset_kwh as anchor_export_offset_kwh
    from changed
    left join lateral (
        select *
        from {{ this }} as stored
        where stored.meter_id = changed.meter_id
          and stored.reading_at < changed.changed_from
        order by stored.reading_at desc
        limit 1
    ) as anchor on true

),

realtime_scope as (

    select
        anchors.meter_id,
        coalesce(anchors.anchor_at, '-infinity'::timestamptz) as from_at{% for column in anchor_values %},
        anchors.{{ column }}{% endfor %}
    from anchors
    where exists (
        select 1 from {{ source('raw', 'realtime_quarters') }} as q
        where q.meter_id = anchors.meter_id
    )

),

candidates as (

    -- lateral: one index range scan per changed meter (meter_readings_identity), whatever
    -- the history's length; unfenced, the planner joined every reading by hash. The raw
    -- index has the database's collation, the staging view's ids collation "C": compared
    -- in the index's (equality is the same in both), the meter is its first column; in
    -- "C" it is not, and each meter cost a scan of every reading.
    select {{ reading_columns('meter_readings') }}{% for column in anchor_values %},
        anchors.{{ column }}{% endfor %}
    from anchors
    cross join lateral (
        select *
        from source
        where source.meter_id = anchors.meter_id collate "default"
          and source.reading_at > coalesce(anchors.anchor_at, '-infinity'::timestamptz)
        offset 0  -- a fence: keeps the per-meter index range scan (no join flattening)
    ) as meter_readings
    union all
    select {{ reading_columns('realtime') }}{% for column in anchor_values %},
        realtime_scope.{{ column }}{% endfor %}
    from realtime_scope
    inner join {{ realtime_readings_needed('realtime_scope', 'source') }} as realtime
        on realtime.meter_id = realtime_scope.meter_id
       and realtime.reading_at > realtime_scope.from_at
    union all
    -- realtime readings stored by earlier runs are taken again (a reading that was the
    -- last of its quarter hour then may not be now): recomputed, never left stale
    select {{ reading_columns('realtime') }}{% for column in anchor_values %},
        realtime_scope.{{ column }}{% endfor %}
    from realtime_scope
    inner join {{ this }} as stored
        on stored.meter_id = realtime_scope.meter_id
       and stored.reading_at > realtime_scope.from_at
    inner join {{ ref('stg_raw__realtime_readings') }} as realtime
        on realtime.meter_id = stored.meter_id
       and realtime.reading_at = stored.reading_at

),

{% else %}

run as (

    select coalesce(max(load_id), 0) as max_load_id from source

),

realtime_scope as (

    select distinct meter_id, '-infinity'::timestamptz as from_at
    from {{ source('raw', 'realtime_quarters') }}

),

candidates as (

    select {{ reading_columns('source') }} from source
    union all
    select {{ reading_columns('realtime') }}
    from {{ realtime_readings_needed('realtime_scope', 'source') }} as realtime

),

{% endif %}

copies as (

    -- the same reading from two sources (polled and pushed) is one: its first arrival.
    -- A window, not a group by: its sort (meter, instant, values, arrival) also orders the
    -- windows below, which then sort nothing more (a group by hashed every reading and
    -- sorted them again: twice the time of a full rebuild's step, docs/scaling.md)
    select meter_id, reading_at, import_kwh, export_kwh, reading_seq{{ carried }}
    from (
        select
            candidates.*,
            row_number() over (
                partition by meter_id, reading_at, import_kwh, export_kwh order by reading_seq
            ) as arrival_rank
        from candidates
    ) as arrivals
    where arrival_rank = 1

),

versions as (

    select
        meter_id,
        reading_at,
        import_kwh as import_raw_kwh,
        export_kwh as export_raw_kwh{{ carried }},
        row_number() over versions_newest_first as version_rank,
        -- an older version behind the newest one is a conflict (one window for both)
        lead(reading_seq) over versions_newest_first is not null as has_older_version
    from copies
    window versions_newest_first as (partition by meter_id, reading_at order by reading_seq desc)

),

chosen as (

    select
        versions.*,
        lag(import_raw_kwh) over by_time as previous_import_raw_kwh,
        lag(export_raw_kwh) over by_time as previous_export_raw_kwh
    from versions
    where version_rank = 1
    window by_time as (partition by meter_id order by reading_at)

),

drops as (

    select
        chosen.*,
        {% if is_incremental() %}
        greatest(coalesce(previous_import_raw_kwh, anchor_import_raw_kwh) - import_raw_kwh, 0)
            as import_drop_kwh,
        greatest(coalesce(previous_export_raw_kwh, anchor_export_raw_kwh) - export_raw_kwh, 0)
            as export_drop_kwh,
        coalesce(anchor_import_offset_kwh, 0) as seed_import_offset_kwh,
        coalesce(anchor_export_offset_kwh, 0) as seed_export_offset_kwh
        {% else %}
        greatest(previous_import_raw_kwh - import_raw_kwh, 0) as import_drop_kwh,
        greatest(previous_export_raw_kwh - export_raw_kwh, 0) as export_drop_kwh,
        0::double precision as seed_import_offset_kwh,
        0::double precision as seed_export_offset_kwh
        {% endif %}
    from chosen

),

rebased as (

    select
        *,
        seed_import_offset_kwh + sum(import_drop_kwh) over by_time as import_offset_kwh,
        seed_export_offset_kwh + sum(export_drop_kwh) over by_time as export_offset_kwh
    from drops
    window by_time as (partition by meter_id order by reading_at rows unbounded preceding)

)

select
    meter_id,
    reading_at,
    import_raw_kwh + import_offset_kwh as import_kwh,
    export_raw_kwh + export_offset_kwh as export_kwh,
    import_raw_kwh,
    export_raw_kwh,
    import_offset_kwh,
    export_offset_kwh,
    (import_drop_kwh > 0 or export_drop_kwh > 0) as counter_drop,
    has_older_version as has_conflict,
    (select max_load_id from run) as max_load_id,
    -- the realtime watermark: transactions this run's snapshot could not see start here
    pg_snapshot_xmin(pg_current_snapshot()) as realtime_xmin,
    {{ run_stamp() }} as computed_at
from rebased
