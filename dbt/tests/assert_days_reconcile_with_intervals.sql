-- The daily rows are the sums of the interval rows: nothing lost between the marts.
with from_intervals as (

    select
        intervals.battery_id,
        (intervals.interval_start at time zone batteries.timezone)::date as local_date,
        sum(intervals.charge_kwh) as charge_kwh,
        sum(intervals.discharge_kwh) as discharge_kwh,
        count(*) as intervals
    from {{ ref('battery_intervals') }} as intervals
    inner join {{ ref('stg_raw__batteries') }} as batteries
        on intervals.battery_id = batteries.battery_id
    group by 1, 2

)

select *
from from_intervals
full outer join {{ ref('battery_daily') }} as daily
    using (battery_id, local_date)
where daily.battery_id is null
   or from_intervals.battery_id is null
   or from_intervals.intervals <> daily.intervals
   or abs(from_intervals.charge_kwh - daily.charge_kwh) > 1e-6
   or abs(from_intervals.discharge_kwh - daily.discharge_kwh) > 1e-6
