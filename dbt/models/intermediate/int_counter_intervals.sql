{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['meter_id', 'interval_start'],
        on_schema_change='fail',
        post_hook='{{ analyze_if_changed() }}',
        indexes=[
            {'columns': ['meter_id', 'interval_start'], 'unique': True},
            {'columns': ['computed_at']},
        ],
    )
}}
-- Rule book, step 1.3 to 1.5, for meters that send counters: values at UTC quarter-hour boundaries (the reading
-- itself, else linear interpolation), interval energy as the difference of two boundaries,
-- and the estimated flag. Intervals exist only between a meter's first and last reading.
--
-- Incremental: a boundary can only change if it lies after the last reading before the
-- earliest changed reading (anchor1). Recomputing from the last reading at or before the
-- quarter hour that contains anchor1 re-emits every interval that could change.

with readings as not materialized (

    select * from {{ ref('int_meter_readings') }}

),

{% if is_incremental() %}

changed as (

    select meter_id, min(reading_at) as changed_from
    from readings
    where computed_at > {{ last_computed_at() }}
    group by meter_id

),

anchors as (

    select changed.meter_id, anchor.reading_at as anchor_at
    from changed
    left join lateral (
        select r.reading_at
        from readings as r
        where r.meter_id = changed.meter_id
          and r.reading_at < changed.changed_from
        order by r.reading_at desc
        limit 1
    ) as anchor1 on true
    left join lateral (
        select r.reading_at
        from readings as r
        where r.meter_id = changed.meter_id
          and r.reading_at <= {{ interval_floor('anchor1.reading_at') }}
        order by r.reading_at desc
        limit 1
    ) as anchor on true

),

scoped as (

    -- lateral: one index range scan per changed meter, whatever the history's length
    select meter_readings.*
    from anchors
    cross join lateral (
        select *
        from readings
        where readings.meter_id = anchors.meter_id
          and readings.reading_at >= coalesce(anchors.anchor_at, '-infinity'::timestamptz)
        offset 0  -- a fence: keeps the per-meter index range scan (no join flattening)
    ) as meter_readings

),

{% else %}

scoped as (

    select * from readings

),

{% endif %}

segments as (

    select
        meter_id,
        reading_at as t0,
        import_kwh as import0,
        export_kwh as export0,
        lead(reading_at) over by_time as t1,
        lead(import_kwh) over by_time as import1,
        lead(export_kwh) over by_time as export1,
        lead(counter_drop) over by_time as has_drop,
        lag(reading_at) over by_time as t_before
    from scoped
    window by_time as (partition by meter_id order by reading_at)

),

shaped as not materialized (

    -- a quarter segment: two readings on consecutive quarter hours, the usual case. Its
    -- interval is the difference of its readings, with no other boundary to look at.
    select
        segments.*,
        coalesce(
            t0 = {{ interval_floor('t0') }} and t1 = t0 + {{ interval_length() }}, false
        ) as is_quarter,
        coalesce(
            t_before = {{ interval_floor('t_before') }}
            and t0 = t_before + {{ interval_length() }},
            false
        ) as follows_quarter
    from segments

),

quarter_intervals as (

    -- step 1.3 and 1.4 on a quarter segment: both boundaries are readings (not
    -- estimated); step 1.5: estimated when the segment holds a counter drop
    select
        meter_id,
        t0 as interval_start,
        import1 - import0 as import_kwh,
        export1 - export0 as export_kwh,
        coalesce(has_drop, false) as estimated
    from shaped
    where is_quarter

),

exact_boundaries as (

    -- a reading on a quarter hour is the boundary value itself (step 1.3). Of quarter
    -- segments only the first of a run: the end of the interval before it.
    select
        meter_id,
        t0 as boundary_at,
        import0 as import_counter,
        export0 as export_counter,
        false as estimated,
        not is_quarter as starts_interval
    from shaped
    where t0 = {{ interval_floor('t0') }}
      and not (is_quarter and follows_quarter)

),

interior_boundaries as (

    -- quarter hours strictly between two readings: linear interpolation (step 1.3),
    -- estimated when the readings are more than one interval apart (step 1.5)
    select
        meter_id,
        boundary_at,
        import0 + (import1 - import0) * fraction as import_counter,
        export0 + (export1 - export0) * fraction as export_counter,
        (t1 - t0) > {{ interval_length() }} as estimated,
        true as starts_interval
    from segments
    cross join lateral generate_series(
        {{ interval_floor('t0') }} + {{ interval_length() }},
        t1 - interval '1 microsecond',
        {{ interval_length() }}
    ) as boundary_at
    cross join lateral (
        select extract(epoch from boundary_at - t0)::double precision
            / extract(epoch from t1 - t0)::double precision as fraction
    ) as f
    where t1 is not null
      and {{ interval_floor('t0') }} + {{ interval_length() }} < t1

),

boundaries as (

    select * from exact_boundaries
    union all
    select * from interior_boundaries

),

other_intervals as (

    -- every other interval: from a boundary to the next one (step 1.4). Only these
    -- boundaries are sorted; the next boundary of each is among them (a quarter
    -- segment after other segments brings its first reading).
    select
        meter_id,
        boundary_at as interval_start,
        lead(boundary_at) over by_time as interval_end,
        lead(import_counter) over by_time - import_counter as import_kwh,
        lead(export_counter) over by_time - export_counter as export_kwh,
        estimated or lead(estimated) over by_time as interpolated,
        starts_interval
    from boundaries
    window by_time as (partition by meter_id order by boundary_at)

),

drop_intervals as (

    -- intervals overlapping a segment that holds a counter drop (step 1.5)
    select distinct segments.meter_id, drop_start as interval_start
    from segments
    cross join lateral generate_series(
        {{ interval_floor('t0') }}, t1 - interval '1 microsecond', {{ interval_length() }}
    ) as drop_start
    where segments.has_drop

)

select
    meter_id,
    interval_start,
    import_kwh,
    export_kwh,
    estimated,
    {{ run_stamp() }} as computed_at
from quarter_intervals
union all
select
    other_intervals.meter_id,
    other_intervals.interval_start,
    other_intervals.import_kwh,
    other_intervals.export_kwh,
    (other_intervals.interpolated or drop_intervals.meter_id is not null) as estimated,
    {{ run_stamp() }} as computed_at
from other_intervals
left join drop_intervals
    on other_intervals.meter_id = drop_intervals.meter_id
    and other_intervals.interval_start = drop_intervals.interval_start
where other_intervals.starts_interval
  and other_intervals.interval_end = other_intervals.interval_start + {{ interval_length() }}
