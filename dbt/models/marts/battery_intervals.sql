{{ config(materialized='view') }}
-- The ledger as customers and partners see it: one row per battery and quarter hour.
select
    ledger.battery_id,
    ledger.interval_start,
    ledger.interval_start + {{ interval_length() }} as interval_end,
    ledger.import_kwh,
    ledger.export_kwh,
    ledger.net_kwh,
    ledger.charge_kwh,
    ledger.discharge_kwh,
    ledger.overflow_kwh,
    ledger.shortfall_kwh,
    ledger.forfeited_kwh,
    ledger.level_kwh,
    (ledger.charge_kwh - ledger.discharge_kwh) * (60.0 / {{ var('interval_minutes') }})
        as power_kw,
    ledger.estimated,
    ledger.period_start
from {{ ref('int_battery_ledger') }} as ledger
