{#-
  The rule book's invariants for every ledger row, to invariant_tolerance_kwh:
  0 <= level <= capacity (capacity > 0); previous level - forfeited + charge - discharge
  = level; export - import = charge - discharge + overflow - shortfall; at most one of
  charge/discharge and one of overflow/shortfall is non-zero. Returns offending rows.
  The capacity is the one of the version in force at the interval (a version's smaller
  capacity clips the level at its first interval: that row's forfeited covers it).
-#}
{% test ledger_invariants(model) %}
{% set tol = var('invariant_tolerance_kwh') %}
with rows as (

    select
        ledger.*,
        versions.capacity_kwh,
        lag(ledger.level_kwh, 1, versions.initial_level_kwh) over (
            partition by ledger.battery_id order by ledger.interval_start
        ) as previous_level_kwh
    from {{ model }} as ledger
    inner join {{ ref('stg_raw__battery_versions') }} as versions
        on ledger.battery_id = versions.battery_id
        and ledger.interval_start >= versions.valid_from_instant
        and ledger.interval_start < versions.valid_until_instant

)

select
    battery_id,
    interval_start,
    case
        when level_kwh < -{{ tol }} then 'level below zero'
        when capacity_kwh > 0 and level_kwh > capacity_kwh + {{ tol }} then 'level above capacity'
        when abs(previous_level_kwh - forfeited_kwh + charge_kwh - discharge_kwh - level_kwh) > {{ tol }}
            then 'level does not follow from the previous level and the flows'
        when abs((export_kwh - import_kwh)
                 - (charge_kwh - discharge_kwh + overflow_kwh - shortfall_kwh)) > {{ tol }}
            then 'net energy is not split into charge/discharge/overflow/shortfall'
        when charge_kwh > {{ tol }} and discharge_kwh > {{ tol }} then 'charge and discharge both non-zero'
        when overflow_kwh > {{ tol }} and shortfall_kwh > {{ tol }} then 'overflow and shortfall both non-zero'
        when least(charge_kwh, discharge_kwh, overflow_kwh, shortfall_kwh, forfeited_kwh) < -{{ tol }}
            then 'negative flow'
    end as broken_invariant
from rows
where
    level_kwh < -{{ tol }}
    or (capacity_kwh > 0 and level_kwh > capacity_kwh + {{ tol }})
    or abs(previous_level_kwh - forfeited_kwh + charge_kwh - discharge_kwh - level_kwh) > {{ tol }}
    or abs((export_kwh - import_kwh)
           - (charge_kwh - discharge_kwh + overflow_kwh - shortfall_kwh)) > {{ tol }}
    or (charge_kwh > {{ tol }} and discharge_kwh > {{ tol }})
    or (overflow_kwh > {{ tol }} and shortfall_kwh > {{ tol }})
    or least(charge_kwh, discharge_kwh, overflow_kwh, shortfall_kwh, forfeited_kwh) < -{{ tol }}
{% endtest %}
