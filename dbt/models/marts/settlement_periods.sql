{{ config(indexes=[{'columns': ['battery_id', 'period_start'], 'unique': True}]) }}
-- One row per battery and settlement period (from a reset instant, or the start, to the
-- next): the totals a partner bills. forfeited_kwh is the level given up when the period
-- began (rule book: it belongs to the first interval at or after the reset instant) plus
-- what a version's smaller capacity clipped inside the period; a version boundary alone
-- starts no new period (docs/rules.md).
with days as (

    select * from {{ ref('battery_daily') }}

),

periods as (

    select
        battery_id,
        period_start,
        min(period_end) as period_end,
        min(local_date) as first_local_date,
        max(local_date) as last_local_date,
        sum(import_kwh) as import_kwh,
        sum(export_kwh) as export_kwh,
        sum(charge_kwh) as charge_kwh,
        sum(discharge_kwh) as discharge_kwh,
        sum(overflow_kwh) as overflow_kwh,
        sum(shortfall_kwh) as shortfall_kwh,
        sum(forfeited_kwh) as forfeited_kwh,
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
        as is_closed
from periods
