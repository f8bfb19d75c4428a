-- The battery as a meter (rule book, "The battery as a meter"): its level and the
-- totals since the start, never reset. Built from the settlement periods (their totals,
-- summed in period order) and the newest interval, so it costs a few rows per battery and
-- year, not one per day or quarter hour: a run rebuilds it whatever the history's length. The meter and
-- capacity are the version's in force at the newest interval (before any interval: the
-- newest version's).
with batteries as (

    select * from {{ ref('stg_raw__batteries') }}

),

totals as (

    select
        battery_id,
        sum(charge_kwh order by period_start) as charged_total_kwh,
        sum(discharge_kwh order by period_start) as discharged_total_kwh,
        sum(overflow_kwh order by period_start) as overflow_total_kwh,
        sum(shortfall_kwh order by period_start) as shortfall_total_kwh,
        sum(forfeited_kwh order by period_start) as forfeited_total_kwh,
        sum(intervals)::bigint as intervals,
        sum(estimated_intervals)::bigint as estimated_intervals
    from {{ ref('settlement_periods') }}
    group by battery_id

)

select
    batteries.battery_id,
    batteries.name,
    batteries.partner_id,
    batteries.customer_id,
    coalesce(latest.meter_id, batteries.meter_id) as meter_id,
    coalesce(latest.capacity_kwh, batteries.capacity_kwh) as capacity_kwh,
    coalesce(latest.level_kwh, batteries.initial_level_kwh) as level_kwh,
    coalesce(totals.charged_total_kwh, 0) as charged_total_kwh,
    coalesce(totals.discharged_total_kwh, 0) as discharged_total_kwh,
    coalesce(totals.overflow_total_kwh, 0) as overflow_total_kwh,
    coalesce(totals.shortfall_total_kwh, 0) as shortfall_total_kwh,
    coalesce(totals.forfeited_total_kwh, 0) as forfeited_total_kwh,
    coalesce((latest.charge_kwh - latest.discharge_kwh) * (60.0 / {{ var('interval_minutes') }}), 0)
        as active_power_kw,
    latest.interval_start + {{ interval_length() }} as reading_at,
    coalesce(totals.intervals, 0) as intervals,
    coalesce(totals.estimated_intervals, 0) as estimated_intervals,
    latest.valid_from as version_valid_from
from batteries
left join totals on batteries.battery_id = totals.battery_id
left join lateral (
    select
        ledger.interval_start,
        ledger.level_kwh,
        ledger.charge_kwh,
        ledger.discharge_kwh,
        ledger.meter_id,
        ledger.capacity_kwh,
        ledger.valid_from
    from {{ ref('int_battery_ledger') }} as ledger
    where ledger.battery_id = batteries.battery_id
    order by ledger.interval_start desc
    limit 1
) as latest on true
