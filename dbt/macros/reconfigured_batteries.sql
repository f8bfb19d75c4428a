{#-
  What the incremental ledger recomputes, and from when (rule book, "Configuration over
  time": a change never moves anything before its valid_from).

  A pre-hook of int_battery_ledger: it writes the temporary table vbatt_ledger_scope
  (battery_id, recompute_from) that the model reads, deletes the battery's stored rows from
  recompute_from on (they are computed again, or are no longer wanted: an end moved
  earlier, an old meter's rows after a meter change), and leaves a marker for battery_daily
  where rows went. A battery is recomputed from the earliest of:
    - its start, when nothing is stored for it (a new battery);
    - the first changed quarter hour of a version's meter inside that version's validity
      (new or late data);
    - a version's valid_from, when its first stored row differs from what it should be
      (another version hash: a new or corrected version; another first interval: a meter
      change) - stateless: the stored rows say with which version they were computed;
    - after a version's newest stored row, when its meter has later data inside the
      validity (an end moved later or cleared);
    - its end, when rows are stored at or after it (an end moved earlier).
  A few index probes per version, so the cost does not grow with the history.
-#}
{% macro ledger_recompute_scope() %}
-- when this run read the battery terms (vbatt.orchestration.pipeline.battery_terms_changed)
create table if not exists {{ this.schema }}.int_battery_ledger_terms_read (
    read_at timestamptz not null
);
delete from {{ this.schema }}.int_battery_ledger_terms_read;
insert into {{ this.schema }}.int_battery_ledger_terms_read values (clock_timestamp());
{% if is_incremental() %}
create temporary table vbatt_ledger_scope on commit drop as
with versions as (

    select * from {{ ref('stg_raw__battery_versions') }}

),

intervals as not materialized (

    select * from {{ ref('int_meter_intervals') }}

),

changed_meters as (

    select meter_id, min(interval_start) as changed_from
    from intervals
    where computed_at > {{ last_computed_at() }}
    group by meter_id

),

candidates as (

    select versions.battery_id, '-infinity'::timestamptz as recompute_from
    from versions
    where versions.version_number = 1
      and not exists (
          select 1 from {{ this }} as stored where stored.battery_id = versions.battery_id
      )

    union all

    select versions.battery_id, greatest(changed_meters.changed_from, versions.valid_from_instant)
    from versions
    inner join changed_meters
        on versions.meter_id = changed_meters.meter_id
        and changed_meters.changed_from < versions.valid_until_instant

    union all

    select
        versions.battery_id,
        case
            when first_stored.interval_start is distinct from first_data.interval_start
              or first_stored.config_hash <> versions.config_hash
              or last_stored.interval_start > last_data.interval_start
                then versions.valid_from_instant
            else last_stored.interval_start + {{ interval_length() }}
        end
    from versions
    left join lateral (
        select stored.interval_start, stored.config_hash
        from {{ this }} as stored
        where stored.battery_id = versions.battery_id
          and stored.interval_start >= versions.valid_from_instant
          and stored.interval_start < versions.valid_until_instant
        order by stored.interval_start
        limit 1
    ) as first_stored on true
    left join lateral (
        select stored.interval_start
        from {{ this }} as stored
        where stored.battery_id = versions.battery_id
          and stored.interval_start >= versions.valid_from_instant
          and stored.interval_start < versions.valid_until_instant
        order by stored.interval_start desc
        limit 1
    ) as last_stored on true
    cross join lateral (
        select min(meter_intervals.interval_start) as interval_start
        from intervals as meter_intervals
        where meter_intervals.meter_id = versions.meter_id
          and meter_intervals.interval_start >= versions.valid_from_instant
          and meter_intervals.interval_start < versions.valid_until_instant
    ) as first_data
    cross join lateral (
        select max(meter_intervals.interval_start) as interval_start
        from intervals as meter_intervals
        where meter_intervals.meter_id = versions.meter_id
          and meter_intervals.interval_start >= versions.valid_from_instant
          and meter_intervals.interval_start < versions.valid_until_instant
    ) as last_data
    where first_stored.interval_start is distinct from first_data.interval_start
       or first_stored.config_hash <> versions.config_hash
       or last_stored.interval_start is distinct from last_data.interval_start

    union all

    select versions.battery_id, versions.end_instant
    from versions
    cross join lateral (
        select stored.interval_start
        from {{ this }} as stored
        where stored.battery_id = versions.battery_id
        order by stored.interval_start desc
        limit 1
    ) as newest
    where versions.version_number = 1 and newest.interval_start >= versions.end_instant

)

select battery_id, min(recompute_from) as recompute_from
from candidates
group by battery_id;
-- a temporary table has no statistics until analyzed: the model's plan depends on its size
analyze vbatt_ledger_scope;

create table if not exists {{ this.schema }}.int_battery_ledger_recomputed (
    battery_id     text        primary key,
    recompute_from timestamptz not null
);

-- the rows to delete, found per battery through the (battery_id, interval_start) index and
-- deleted by their row ids: a join of the scope with the table (the planner cannot know
-- recompute_from is near the end) read the whole history, and so did every run
with deleted as (
    delete from {{ this }} as stored
    where stored.ctid = any(array(
        {{ scoped_row_ids(this, 'vbatt_ledger_scope', 'interval_start', 'recompute_from') }}
    ))
    returning stored.battery_id, stored.interval_start
)
insert into {{ this.schema }}.int_battery_ledger_recomputed as marker (battery_id, recompute_from)
select battery_id, min(interval_start) from deleted group by battery_id
on conflict (battery_id) do update
    set recompute_from = least(marker.recompute_from, excluded.recompute_from)
{% else %}
drop table if exists {{ this.schema }}.int_battery_ledger_recomputed
{% endif %}
{% endmacro %}


{#-
  A pre-hook of battery_daily: the days from a battery's first deleted ledger row on go
  (the ledger's markers, consumed here); the model computes them again from what is left.
-#}
{% macro daily_recompute_scope() %}
{% set markers = ref('int_battery_ledger').schema ~ '.int_battery_ledger_recomputed' %}
create temporary table vbatt_daily_scope (battery_id text, from_date date) on commit drop;
{% if is_incremental() %}
create table if not exists {{ markers }} (
    battery_id     text        primary key,
    recompute_from timestamptz not null
);
with markers as (
    delete from {{ markers }} returning *
)
insert into vbatt_daily_scope (battery_id, from_date)
select markers.battery_id, (markers.recompute_from at time zone batteries.timezone)::date
from markers
inner join {{ ref('stg_raw__batteries') }} as batteries on markers.battery_id = batteries.battery_id;
analyze vbatt_daily_scope;
delete from {{ this }} as stored
where stored.ctid = any(array(
    {{ scoped_row_ids(this, 'vbatt_daily_scope', 'local_date', 'from_date') }}
));
-- a marker for settlement_periods: days from here on were deleted (some may not return)
{{ create_daily_markers() }};
insert into {{ daily_markers() }} as marker (battery_id, from_date)
select battery_id, from_date from vbatt_daily_scope
on conflict (battery_id) do update set from_date = least(marker.from_date, excluded.from_date)
{% else %}
-- a full build: settlement_periods is built from every day, no marker is due (the table
-- exists from the first run on, so a run changes no relation's set)
{{ create_daily_markers() }};
truncate {{ daily_markers() }}
{% endif %}
{% endmacro %}


{#-
  A pre-hook of settlement_periods: the periods to compute again, per battery from the
  first day of the stored period that holds its earliest changed day (a period's totals
  need all its days): days rewritten since the last run and the daily model's markers
  (days it deleted). Those periods and every later one are deleted; the model computes
  them from battery_daily through its (battery_id, local_date) index.
-#}
{% macro settlement_recompute_scope() %}
{% set markers = daily_markers() %}
create temporary table vbatt_settlement_scope (battery_id text primary key, from_date date)
    on commit drop;
{% if is_incremental() %}
{{ create_daily_markers() }};
with markers as (
    delete from {{ markers }} returning *
),
changed as (
    select battery_id, min(local_date) as from_date
    from {{ ref('battery_daily') }}
    {#- a table from before settlement_periods had run stamps: every day is new to it #}
    {%- set stamped = 'computed_at' in (adapter.get_columns_in_relation(this) | map(attribute='name')) %}
    where computed_at > {{ last_computed_at() if stamped else "'-infinity'::timestamptz" }}
    group by battery_id
    union all
    select battery_id, from_date from markers
)
insert into vbatt_settlement_scope (battery_id, from_date)
select battery_id, min(from_date) from changed group by battery_id;
-- the first changed day may now belong to a stored period that began before it (a new
-- version moved or removed the reset between them): from that period's first day, or its
-- days would be summed again apart from the ones before (both lookups by index)
update vbatt_settlement_scope as scope
set from_date = least(scope.from_date, (
    select stored.first_local_date
    from {{ this }} as stored
    where stored.battery_id = scope.battery_id
      and stored.period_start = (
          select daily.period_start
          from {{ ref('battery_daily') }} as daily
          where daily.battery_id = scope.battery_id and daily.local_date >= scope.from_date
          order by daily.local_date
          limit 1
      )
));
update vbatt_settlement_scope as scope
set from_date = least(scope.from_date, (
    select stored.first_local_date
    from {{ this }} as stored
    where stored.battery_id = scope.battery_id and stored.first_local_date <= scope.from_date
    order by stored.first_local_date desc
    limit 1
));
analyze vbatt_settlement_scope;
delete from {{ this }} as stored
where stored.ctid = any(array(
    {{ scoped_row_ids(this, 'vbatt_settlement_scope', 'first_local_date', 'from_date') }}
))
{% endif %}
{% endmacro %}


{#-
  The row ids of a table's rows at or after a per-battery bound: one index range scan per
  battery of the scope (battery_id, bound), so the cost follows what the scope holds, not
  the history. The fence keeps the planner from turning it into a join over every row.
-#}
{% macro scoped_row_ids(relation, scope, column, bound) -%}
select battery_rows.row_id
from {{ scope }} as scope
cross join lateral (
    select stored.ctid as row_id
    from {{ relation }} as stored
    where stored.battery_id = scope.battery_id
      and stored.{{ column }} >= scope.{{ bound }}
    offset 0
) as battery_rows
{%- endmacro %}


{#- Where battery_daily leaves its markers for settlement_periods: beside the ledger's, in
    the intermediate schema (bookkeeping, not a mart). -#}
{% macro daily_markers() -%}
{{ ref('int_battery_ledger').schema }}.battery_daily_recomputed
{%- endmacro %}


{#- The table of those markers, made by whichever model runs first. -#}
{% macro create_daily_markers() -%}
create table if not exists {{ daily_markers() }} (
    battery_id text primary key,
    from_date  date not null
)
{%- endmacro %}
