{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['battery_id', 'local_date'],
        on_schema_change='fail',
        post_hook='{{ analyze_if_changed() }}',
        indexes=[
            {'columns': ['battery_id', 'local_date'], 'unique': True},
            {'columns': ['computed_at']},
        ],
        pre_hook=["{{ daily_recompute_scope() }}", "{{ aggregate_by_hash_in_full_build() }}"],
    )
}}
-- Local days of the battery's timezone (92, 96 or 100 quarter hours). Incremental: the
-- days from the first ledger row rewritten since the last run onwards, and from where the
-- ledger deleted rows (its markers, read and removed by the pre-hook).

with batteries as (

    select * from {{ ref('stg_raw__batteries') }}

),

versions as (

    select * from {{ ref('stg_raw__battery_versions') }}

),

ledger as not materialized (

    select * from {{ ref('int_battery_ledger') }}

),

{% if is_incremental() %}

changed_rows as (

    select ledger.battery_id, (min(ledger.interval_start) at time zone any_value(batteries.timezone))::date as from_date
    from ledger
    inner join batteries on ledger.battery_id = batteries.battery_id
    where ledger.computed_at > {{ last_computed_at() }}
    group by ledger.battery_id

),

changed as (

    select battery_id, min(from_date) as from_date
    from (
        select battery_id, from_date from changed_rows
        union all
        select battery_id, from_date from vbatt_daily_scope
    ) as both_kinds
    group by battery_id

),

scoped as (

    -- lateral: one index range scan per changed battery, whatever the history's length
    select battery_rows.*, batteries.timezone
    from changed
    inner join batteries on changed.battery_id = batteries.battery_id
    cross join lateral (
        select *
        from ledger
        where ledger.battery_id = changed.battery_id
          and ledger.interval_start >= {{ local_midnight('changed.from_date', 'batteries.timezone') }}
        offset 0  -- a fence: keeps the per-battery index range scan (no join flattening)
    ) as battery_rows

),

{% else %}

scoped as (

    select ledger.*, batteries.timezone
    from ledger
    inner join batteries on ledger.battery_id = batteries.battery_id

),

{% endif %}

days as (

    select
        battery_id,
        (interval_start at time zone timezone)::date as local_date,
        timezone,
        valid_from,
        period_start,
        period_end,
        import_kwh,
        export_kwh,
        charge_kwh,
        discharge_kwh,
        overflow_kwh,
        shortfall_kwh,
        forfeited_kwh,
        level_kwh,
        estimated,
        interval_start
    from scoped

),

daily as (

    select
        battery_id,
        local_date,
        min(period_start) as period_start,
        min(period_end) as period_end,
        sum(import_kwh) as import_kwh,
        sum(export_kwh) as export_kwh,
        sum(charge_kwh) as charge_kwh,
        sum(discharge_kwh) as discharge_kwh,
        sum(overflow_kwh) as overflow_kwh,
        sum(shortfall_kwh) as shortfall_kwh,
        sum(forfeited_kwh) as forfeited_kwh,
        -- the level of the day's newest interval, without sorting: arrays compare element-wise
        (max(array[extract(epoch from interval_start)::double precision, level_kwh]))[2]
            as level_end_kwh,
        min(level_kwh) as level_min_kwh,
        max(level_kwh) as level_max_kwh,
        count(*)::int as intervals,
        (count(*) filter (where estimated))::int as estimated_intervals,
        (extract(epoch from
            {{ local_midnight('local_date + 1', 'any_value(timezone)') }}
            - {{ local_midnight('local_date', 'any_value(timezone)') }}
        ) / 60 / {{ var('interval_minutes') }})::int as expected_intervals,
        max(interval_start) as last_interval_start,
        -- the version in force at the day's newest interval: versions follow each other in
        -- time, so it is the newest valid_from of the day's rows (a max, where an ordered
        -- aggregate sorted every interval of the history in a full build)
        max(valid_from) as last_valid_from
    from days
    group by battery_id, local_date

)

select
    -- in the table's collation (the contract's text), not the staging ids' "C": dbt's
    -- delete of a run's days then matches them through the (battery_id, local_date)
    -- index; with two collations it hashed the whole table (a seq scan of every day)
    daily.battery_id collate "default" as battery_id,
    daily.local_date,
    daily.period_start,
    daily.period_end,
    daily.import_kwh,
    daily.export_kwh,
    daily.charge_kwh,
    daily.discharge_kwh,
    daily.overflow_kwh,
    daily.shortfall_kwh,
    daily.forfeited_kwh,
    daily.level_end_kwh,
    daily.level_min_kwh,
    daily.level_max_kwh,
    daily.intervals,
    daily.estimated_intervals,
    daily.expected_intervals,
    daily.last_interval_start,
    -- the config_hash the day's newest interval was computed with (int_battery_ledger
    -- takes it from the same version)
    versions.config_hash,
    {{ run_stamp() }} as computed_at
from daily
left join versions
    on daily.battery_id = versions.battery_id
    and daily.last_valid_from = versions.valid_from
-- stored in (battery, day) order, as the hash aggregate does not leave them:
-- settlement_periods reads a battery's days of a period together, from few pages
order by daily.battery_id, daily.local_date
