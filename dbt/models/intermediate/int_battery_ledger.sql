{{
    config(
        materialized='incremental',
        unlogged=true,
        incremental_strategy='delete+insert',
        unique_key=['battery_id', 'interval_start'],
        on_schema_change='fail',
        post_hook='analyze {{ this }}',
        indexes=[
            {'columns': ['battery_id', 'interval_start'], 'unique': True},
            {'columns': ['computed_at']},
        ],
        pre_hook="{{ delete_reconfigured_batteries('interval_start') }}",
    )
}}
-- Rule book, step 2: the battery interval by interval. The level is a clamped running
-- sum computed by the vbatt_level aggregate (macros/ledger_step.sql); the flows come from
-- the same expressions applied to the previous level.
--
-- Incremental: a battery continues from its stored level at the last row before the
-- earliest interval that changed for its meter; a new or reconfigured battery starts over.

with batteries as (

    select * from {{ ref('stg_raw__batteries') }}

),

intervals as not materialized (

    select * from {{ ref('int_meter_intervals') }}

),

{% if is_incremental() %}

changed_meters as (

    select meter_id, min(interval_start) as changed_from
    from intervals
    where computed_at > {{ last_computed_at() }}
    group by meter_id

),

scope as (

    select
        batteries.battery_id,
        case when newest.battery_id is null then '-infinity'::timestamptz
             else changed_meters.changed_from end as recompute_from
    from batteries
    left join lateral (
        select stored.battery_id
        from {{ this }} as stored
        where stored.battery_id = batteries.battery_id
        order by stored.interval_start desc
        limit 1
    ) as newest on true
    left join changed_meters on batteries.meter_id = changed_meters.meter_id
    where newest.battery_id is null or changed_meters.meter_id is not null

),

seeds as (

    select
        batteries.*,
        greatest(batteries.start_instant, scope.recompute_from) as from_instant,
        coalesce(seed_row.level_kwh, batteries.initial_level_kwh) as seed_level_kwh
    from scope
    inner join batteries on scope.battery_id = batteries.battery_id
    left join lateral (
        select stored.level_kwh
        from {{ this }} as stored
        where stored.battery_id = scope.battery_id
          and stored.interval_start < scope.recompute_from
        order by stored.interval_start desc
        limit 1
    ) as seed_row on true

),

{% else %}

seeds as (

    select
        batteries.*,
        batteries.start_instant as from_instant,
        batteries.initial_level_kwh as seed_level_kwh
    from batteries

),

{% endif %}

scoped as not materialized (

    select
        seeds.battery_id,
        seeds.capacity_kwh,
        seeds.seed_level_kwh,
        seeds.config_hash,
        intervals.interval_start,
        intervals.import_kwh,
        intervals.export_kwh,
        intervals.export_kwh - intervals.import_kwh as net_kwh,
        intervals.estimated
    from seeds
    {% if is_incremental() %}
    -- lateral: one index range scan per battery in scope, whatever the history's length
    cross join lateral (
        select *
        from intervals as meter_intervals
        where meter_intervals.meter_id = seeds.meter_id
          and meter_intervals.interval_start >= seeds.from_instant
          and meter_intervals.interval_start < seeds.end_instant
        offset 0  -- a fence: keeps the per-battery index range scan (no join flattening)
    ) as intervals
    {% else %}
    inner join intervals
        on intervals.meter_id = seeds.meter_id
        and intervals.interval_start >= seeds.from_instant
        and intervals.interval_start < seeds.end_instant
    {% endif %}

),

reset_years as (

    -- resets are generated only up to the year after the data in scope
    select
        seeds.battery_id,
        seeds.timezone,
        seeds.reset_date,
        generate_series(
            extract(year from seeds.reset_date)::int,
            case when seeds.reset_repeat = 'yearly'
                then greatest(
                    extract(year from seeds.reset_date)::int,
                    extract(year from data_range.last_start at time zone seeds.timezone)::int + 1
                )
                else extract(year from seeds.reset_date)::int end
        ) as reset_year
    from seeds
    cross join lateral (
        -- one index probe: the newest quarter hour of the meter
        select max(meter_intervals.interval_start) as last_start
        from intervals as meter_intervals
        where meter_intervals.meter_id = seeds.meter_id
    ) as data_range
    where seeds.reset_date is not null

),

period_starts as (

    select battery_id, start_instant as period_start from seeds
    union all
    select reset_years.battery_id, reset_at
    from reset_years
    inner join seeds on reset_years.battery_id = seeds.battery_id
    cross join lateral (
        select {{ local_midnight(anniversary('reset_years.reset_date', 'reset_years.reset_year'),
                                 'reset_years.timezone') }} as reset_at
    ) as r
    where reset_at > seeds.start_instant
      and reset_at < seeds.end_instant

),

periods as (

    select
        period_starts.battery_id,
        period_starts.period_start,
        coalesce(
            lead(period_starts.period_start) over (
                partition by period_starts.battery_id order by period_starts.period_start
            ),
            seeds.end_instant
        ) as period_end,
        -- a reset forfeits at the first interval at or after its instant (docs/rules.md);
        -- the start instant is no reset
        case when period_starts.period_start > seeds.start_instant then (
            select min(meter_intervals.interval_start)
            from intervals as meter_intervals
            where meter_intervals.meter_id = seeds.meter_id
              and meter_intervals.interval_start >= period_starts.period_start
        ) end as reset_interval_start
    from period_starts
    inner join seeds on period_starts.battery_id = seeds.battery_id

),

flagged as (

    select
        scoped.*,
        periods.period_start,
        periods.period_end,
        coalesce(scoped.interval_start = periods.reset_interval_start, false) as is_reset
    from scoped
    inner join periods
        on scoped.battery_id = periods.battery_id
        and scoped.interval_start >= periods.period_start
        and scoped.interval_start < periods.period_end

),

levelled as (

    select
        flagged.*,
        {{ target.schema }}.vbatt_level(net_kwh, capacity_kwh, is_reset, seed_level_kwh)
            over by_time as level_kwh
    from flagged
    window by_time as (partition by battery_id order by interval_start rows unbounded preceding)

),

stepped as (

    select
        levelled.*,
        lag(level_kwh, 1, seed_level_kwh) over by_time as previous_level_kwh
    from levelled
    window by_time as (partition by battery_id order by interval_start)

),

flows as (

    select
        stepped.*,
        case when is_reset then previous_level_kwh else 0::double precision end as forfeited_kwh,
        {{ ledger_charge('base.level', 'net_kwh', 'capacity_kwh') }} as charge_kwh,
        {{ ledger_discharge('base.level', 'net_kwh') }} as discharge_kwh
    from stepped
    cross join lateral (
        select case when is_reset then 0::double precision else previous_level_kwh end as level
    ) as base

)

select
    battery_id,
    interval_start,
    import_kwh,
    export_kwh,
    net_kwh,
    charge_kwh,
    discharge_kwh,
    case when net_kwh >= 0 then net_kwh - charge_kwh else 0::double precision end as overflow_kwh,
    case when net_kwh < 0 then -net_kwh - discharge_kwh else 0::double precision end
        as shortfall_kwh,
    forfeited_kwh,
    level_kwh,
    estimated,
    period_start,
    period_end,
    config_hash,
    {{ run_stamp() }} as computed_at
from flows
