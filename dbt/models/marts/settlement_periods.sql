{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        post_hook='{{ analyze_if_changed() }}',
        indexes=[
            {'columns': ['battery_id', 'period_start'], 'unique': True},
            {'columns': ['computed_at']},
        ],
        pre_hook="{{ settlement_recompute_scope() }}",
    )
}}
-- One row per battery and settlement period (from a reset instant, or the start, to the
-- next): the totals a partner bills. forfeited_kwh is the level given up when the period
-- began (rule book: it belongs to the first interval at or after the reset instant) plus
-- what a version's smaller capacity clipped inside the period; a version boundary alone
-- starts no new period (docs/rules.md).
-- Incremental: the pre-hook (macros/reconfigured_batteries.sql) deletes, per battery with
-- changed days, the period holding the earliest of them and every later one; they are
-- computed again here from their days, read through battery_daily's index. Sums run in
-- date order, so an incremental run and a full rebuild add the same numbers in the same
-- order.
{% if is_incremental() %}

with days as (

    select battery_days.*
    from vbatt_settlement_scope as scope
    cross join lateral (
        select *
        from {{ ref('battery_daily') }} as daily
        where daily.battery_id = scope.battery_id
          and daily.local_date >= scope.from_date
        offset 0  -- a fence: keeps the per-battery index range scan (no join flattening)
    ) as battery_days

),

{% else %}

with days as (

    select * from {{ ref('battery_daily') }}

),

{% endif %}

periods as (

    select
        battery_id,
        period_start,
        min(period_end) as period_end,
        min(local_date) as first_local_date,
        max(local_date) as last_local_date,
        sum(import_kwh order by local_date) as import_kwh,
        sum(export_kwh order by local_date) as export_kwh,
        sum(charge_kwh order by local_date) as charge_kwh,
        sum(discharge_kwh order by local_date) as discharge_kwh,
        sum(overflow_kwh order by local_date) as overflow_kwh,
        sum(shortfall_kwh order by local_date) as shortfall_kwh,
        sum(forfeited_kwh order by local_date) as forfeited_kwh,
        (array_agg(level_end_kwh order by local_date desc))[1] as level_end_kwh,
        sum(intervals)::bigint as intervals,
        sum(estimated_intervals)::bigint as estimated_intervals,
        max(last_interval_start) as last_interval_start
    from days
    group by battery_id, period_start

)

select
    periods.battery_id,
    periods.period_start,
    nullif(periods.period_end, 'infinity'::timestamptz) as period_end,
    periods.first_local_date,
    periods.last_local_date,
    periods.import_kwh,
    periods.export_kwh,
    periods.charge_kwh,
    periods.discharge_kwh,
    periods.overflow_kwh,
    periods.shortfall_kwh,
    periods.forfeited_kwh,
    periods.level_end_kwh,
    periods.intervals,
    periods.estimated_intervals,
    coalesce(periods.last_interval_start + {{ interval_length() }} >= periods.period_end, false)
        as is_closed,
    {{ run_stamp() }} as computed_at
from periods
