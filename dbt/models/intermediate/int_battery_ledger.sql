{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['battery_id', 'interval_start'],
        on_schema_change='append_new_columns',
        post_hook='{{ analyze_if_changed() }}',
        indexes=[
            {'columns': ['battery_id', 'interval_start'], 'unique': True},
            {'columns': ['computed_at']},
        ],
        pre_hook="{{ ledger_recompute_scope() }}",
    )
}}
-- Rule book, step 2 and "Configuration over time": the battery interval by interval,
-- across its versions. An interval belongs to the version in force at its start and
-- comes from that version's meter; the level carries over a version boundary, clipped
-- to a smaller non-zero capacity at the version's first interval (the excess is
-- forfeited); resets are each version's, inside its validity. The level is a clamped
-- running sum computed by the vbatt_level aggregate (macros/ledger_step.sql); the flows
-- come from the same expressions applied to the previous level.
--
-- Incremental: the pre-hook (macros/reconfigured_batteries.sql) says which batteries to
-- recompute from when (new data, a new or corrected version: from its valid_from, never
-- from the start) and deletes their rows from there; each continues from its stored level.

with versions as (

    select * from {{ ref('stg_raw__battery_versions') }}

),

intervals as not materialized (

    select * from {{ ref('int_meter_intervals') }}

),

batteries as (

    -- the battery's fixed terms, from its first version
    select
        battery_id,
        timezone,
        start_instant,
        end_instant,
        initial_level_kwh,
        config_hash as first_config_hash
    from versions
    where version_number = 1

),

{% if is_incremental() %}

seeds as (

    select
        batteries.*,
        greatest(batteries.start_instant, scope.recompute_from) as from_instant,
        coalesce(seed_row.level_kwh, batteries.initial_level_kwh) as seed_level_kwh,
        coalesce(seed_row.config_hash, batteries.first_config_hash) as seed_config_hash,
        coalesce(seed_row.interval_start, '-infinity'::timestamptz) as seed_interval_start
    from vbatt_ledger_scope as scope
    inner join batteries on scope.battery_id = batteries.battery_id
    left join lateral (
        -- the stored row before recompute_from (the pre-hook deleted the later ones)
        select stored.level_kwh, stored.config_hash, stored.interval_start
        from {{ this }} as stored
        where stored.battery_id = scope.battery_id
        order by stored.interval_start desc
        limit 1
    ) as seed_row on true

),

{% else %}

seeds as (

    select
        batteries.*,
        batteries.start_instant as from_instant,
        batteries.initial_level_kwh as seed_level_kwh,
        batteries.first_config_hash as seed_config_hash,
        '-infinity'::timestamptz as seed_interval_start
    from batteries

),

{% endif %}

scoped_versions as (

    select
        versions.*,
        seeds.from_instant,
        seeds.seed_level_kwh,
        seeds.seed_config_hash,
        seeds.seed_interval_start,
        greatest(versions.valid_from_instant, seeds.from_instant) as scope_from
    from seeds
    inner join versions
        on seeds.battery_id = versions.battery_id
        and versions.valid_until_instant > seeds.from_instant

),

scoped as not materialized (

    select
        scoped_versions.battery_id,
        scoped_versions.meter_id,
        scoped_versions.capacity_kwh,
        scoped_versions.valid_from,
        scoped_versions.config_hash,
        scoped_versions.start_instant,
        scoped_versions.seed_level_kwh,
        scoped_versions.seed_config_hash,
        scoped_versions.seed_interval_start,
        intervals.interval_start,
        intervals.import_kwh,
        intervals.export_kwh,
        intervals.export_kwh - intervals.import_kwh as net_kwh,
        intervals.estimated
    from scoped_versions
    {% if is_incremental() %}
    -- lateral: one index range scan per version in scope, whatever the history's length
    cross join lateral (
        select *
        from intervals as meter_intervals
        where meter_intervals.meter_id = scoped_versions.meter_id
          and meter_intervals.interval_start >= scoped_versions.scope_from
          and meter_intervals.interval_start < scoped_versions.valid_until_instant
        offset 0  -- a fence: keeps the per-battery index range scan (no join flattening)
    ) as intervals
    {% else %}
    inner join intervals
        on intervals.meter_id = scoped_versions.meter_id
        and intervals.interval_start >= scoped_versions.scope_from
        and intervals.interval_start < scoped_versions.valid_until_instant
    {% endif %}

),

reset_versions as (

    -- resets are generated only up to the year after the newest data (or the version's
    -- start, for a version not reached yet)
    select
        versions.*,
        greatest(
            extract(year from versions.reset_date)::int,
            extract(year from versions.valid_from)::int + 1,
            extract(year from data_range.last_start at time zone versions.timezone)::int + 1
        ) as last_year
    from versions
    inner join seeds on versions.battery_id = seeds.battery_id
    cross join lateral (
        -- one index probe: the newest quarter hour of the version's meter
        select max(meter_intervals.interval_start) as last_start
        from intervals as meter_intervals
        where meter_intervals.meter_id = versions.meter_id
    ) as data_range
    where versions.reset_date is not null

),

reset_instants as (

    -- a version's resets inside its validity, strictly after the start, from reset_date on
    select reset_versions.battery_id, r.reset_at
    from reset_versions
    cross join lateral generate_series(
        extract(year from reset_versions.reset_date)::int,
        case when reset_versions.reset_repeat = 'yearly' then reset_versions.last_year
             else extract(year from reset_versions.reset_date)::int end
    ) as y (reset_year)
    cross join lateral (
        select {{ local_midnight(anniversary('reset_versions.reset_date', 'y.reset_year'),
                                 'reset_versions.timezone') }} as reset_at
    ) as r
    where r.reset_at >= reset_versions.valid_from_instant
      and r.reset_at < reset_versions.valid_until_instant
      and r.reset_at > reset_versions.start_instant

),

period_starts as (

    select battery_id, start_instant as period_start from seeds
    union
    select battery_id, reset_at from reset_instants

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
        ) as period_end
    from period_starts
    inner join seeds on period_starts.battery_id = seeds.battery_id

),

flagged as (

    select
        scoped.*,
        periods.period_start,
        periods.period_end,
        lag(scoped.interval_start, 1, scoped.seed_interval_start) over by_time
            as previous_interval_start,
        lag(scoped.config_hash, 1, scoped.seed_config_hash) over by_time
            as previous_config_hash
    from scoped
    inner join periods
        on scoped.battery_id = periods.battery_id
        and scoped.interval_start >= periods.period_start
        and scoped.interval_start < periods.period_end
    window by_time as (partition by scoped.battery_id order by scoped.interval_start)

),

marked as (

    select
        flagged.*,
        -- a reset forfeits at the first interval at or after its instant (docs/rules.md):
        -- the row whose period began after the previous row; the start is no reset
        (period_start > start_instant and period_start > previous_interval_start) as is_reset,
        -- a version's first interval: the last boundary before it applies (its capacity)
        config_hash <> previous_config_hash as is_clip
    from flagged

),

levelled as (

    -- the level before each interval: the aggregate over the rows before it (the frame
    -- ends one row earlier; the seed before the first row). The interval's own step
    -- follows from it with the aggregate's expressions, so one window pass gives the
    -- previous level and the level, where the level and then its lag took two.
    select
        marked.*,
        coalesce(
            {{ target.schema }}.vbatt_level(net_kwh, capacity_kwh, is_reset, is_clip, seed_level_kwh)
                over rows_before,
            seed_level_kwh
        ) as previous_level_kwh
    from marked
    window rows_before as (
        partition by battery_id order by interval_start
        rows between unbounded preceding and 1 preceding
    )

),

flows as (

    select
        levelled.*,
        previous_level_kwh - base.level as forfeited_kwh,
        step.charge_kwh,
        step.discharge_kwh,
        -- the aggregate's step (macros/ledger_step.sql), in its order of operations
        base.level + step.charge_kwh - step.discharge_kwh as level_kwh
    from levelled
    cross join lateral (
        select {{ ledger_base('previous_level_kwh', 'is_reset', 'is_clip', 'capacity_kwh') }}
            as level
    ) as base
    cross join lateral (
        select
            {{ ledger_charge('base.level', 'net_kwh', 'capacity_kwh') }} as charge_kwh,
            {{ ledger_discharge('base.level', 'net_kwh') }} as discharge_kwh
    ) as step

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
    {{ run_stamp() }} as computed_at,
    meter_id,
    capacity_kwh,
    valid_from
from flows
