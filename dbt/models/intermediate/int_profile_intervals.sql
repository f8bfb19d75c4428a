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
-- Quarter hours of meters that send load profiles (energies per interval, e.g. MSCONS)
-- instead of counters. The newest version of each value wins (corrections are re-sent);
-- an interval exists once both registers have a value; a substitute value is estimated.

with energies as not materialized (

    select * from {{ ref('stg_raw__interval_energies') }}
    where interval_end = interval_start + {{ interval_length() }}
      and interval_start = {{ interval_floor('interval_start') }}

),

run as (

    select coalesce(max(load_id), 0) as max_load_id from {{ ref('stg_raw__interval_energies') }}

),

{% if is_incremental() %}

changed as (

    select distinct meter_id, interval_start
    from energies
    where load_id > {{ last_max_load_id() }}

),

scoped as (

    select energies.*
    from energies
    inner join changed using (meter_id, interval_start)

),

{% else %}

scoped as (

    select * from energies

),

{% endif %}

newest as (

    select distinct on (meter_id, interval_start, register) *
    from scoped
    order by meter_id, interval_start, register, energy_seq desc

)

select
    meter_id,
    interval_start,
    max(kwh) filter (where register = 'import') as import_kwh,
    max(kwh) filter (where register = 'export') as export_kwh,
    bool_or(substitute) as estimated,
    (select max_load_id from run) as max_load_id,
    {{ run_stamp() }} as computed_at
from newest
group by meter_id, interval_start
having count(*) filter (where register = 'import') = 1
   and count(*) filter (where register = 'export') = 1
