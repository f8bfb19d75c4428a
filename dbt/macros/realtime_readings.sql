{#-
  Realtime readings for step 1 (docs/realtime.md, "What the ledger reads").

  raw.realtime_values holds up to one reading a second per meter; step 1 needs only:
  the first and last reading of each UTC quarter hour (raw.realtime_quarters: they bracket
  every boundary), the marked instants (raw.realtime_marks: drops, out-of-order arrivals,
  second versions), the instants of polled readings and of quarantined ones, and the
  realtime neighbours (previous and next reading) of those last three. Every counter drop
  between neighbours in time then lies between two selected readings that are neighbours
  among the selected too, so step 1's result is the same as from every reading, at a
  cost that does not grow with the push rate: each instant is an index lookup.

  scope: a relation (meter_id, from_at): the meters to read and from which instant on
  (inclusive: a mark at from_at still brings its next neighbour). Returns every version
  of the selected instants (stg_raw__realtime_readings columns).
-#}
{% macro realtime_readings_needed(scope, polled) -%}
(
    with scope as not materialized (
        select * from {{ scope }}
    ),

    seeds as (

        select marks.meter_id, marks.value_at as at
        from scope
        inner join {{ source('raw', 'realtime_marks') }} as marks
            on marks.meter_id = scope.meter_id and marks.value_at >= scope.from_at
        union
        select polled.meter_id, polled.reading_at
        from scope
        inner join {{ polled }} as polled
            on polled.meter_id = scope.meter_id and polled.reading_at >= scope.from_at
        union
        select held.meter_id collate "C", held.ts
        from scope
        inner join {{ source('raw', 'quarantined_readings') }} as held
            on held.meter_id = scope.meter_id and held.ts >= scope.from_at

    ),

    neighbours as (

        select seeds.meter_id, previous.at
        from seeds
        cross join lateral (
            select coalesce(
                (
                    select v.value_at
                    from {{ source('raw', 'realtime_values') }} as v
                    where v.meter_id = seeds.meter_id
                      and v.value_at >= {{ realtime_quarter('seeds.at') }}
                      and v.value_at < seeds.at
                      and v.import_kwh is not null and v.export_kwh is not null
                    order by v.value_at desc
                    limit 1
                ),
                (
                    select q.last_at
                    from {{ source('raw', 'realtime_quarters') }} as q
                    where q.meter_id = seeds.meter_id
                      and q.interval_start < {{ realtime_quarter('seeds.at') }}
                    order by q.interval_start desc
                    limit 1
                )
            ) as at
        ) as previous
        union
        select seeds.meter_id, following.at
        from seeds
        cross join lateral (
            select coalesce(
                (
                    select v.value_at
                    from {{ source('raw', 'realtime_values') }} as v
                    where v.meter_id = seeds.meter_id
                      and v.value_at > seeds.at
                      and v.value_at < {{ realtime_quarter('seeds.at') }} + interval '15 minutes'
                      and v.import_kwh is not null and v.export_kwh is not null
                    order by v.value_at
                    limit 1
                ),
                (
                    select q.first_at
                    from {{ source('raw', 'realtime_quarters') }} as q
                    where q.meter_id = seeds.meter_id
                      and q.interval_start > {{ realtime_quarter('seeds.at') }}
                    order by q.interval_start
                    limit 1
                )
            ) as at
        ) as following

    ),

    brackets as (

        select q.meter_id, unnest(array[q.first_at, q.last_at]) as at
        from scope
        inner join {{ source('raw', 'realtime_quarters') }} as q
            on q.meter_id = scope.meter_id
           and q.interval_start >= {{ realtime_quarter('scope.from_at') }}

    ),

    instants as (

        select meter_id, at from seeds
        union
        select meter_id, at from neighbours where at is not null
        union
        select meter_id, at from brackets

    )

    select readings.*
    from instants
    inner join {{ ref('stg_raw__realtime_readings') }} as readings
        on readings.meter_id = instants.meter_id and readings.reading_at = instants.at
)
{%- endmacro %}

{#- The UTC quarter hour of raw.realtime_quarters (fixed at 15 minutes, the rule book's
    interval; '-infinity' stays '-infinity'). -#}
{% macro realtime_quarter(ts) -%}
(case when {{ ts }} = '-infinity'::timestamptz then {{ ts }}
 else date_bin(interval '15 minutes', {{ ts }}, timestamptz '2000-01-01 00:00:00+00') end)
{%- endmacro %}

{#- The realtime watermark of the newest run: the oldest transaction its snapshot could
    not see; every quarter changed by a transaction from there on is taken up again. -#}
{% macro last_realtime_xmin() -%}
'{{ _scalar("select realtime_xmin::text from " ~ this ~ " order by computed_at desc limit 1", 0) }}'::xid8
{%- endmacro %}

{#- The columns both reading sources give step 1 (polled readings keep their load). -#}
{% macro reading_columns(alias) -%}
{{ alias }}.meter_id, {{ alias }}.reading_at, {{ alias }}.import_kwh, {{ alias }}.export_kwh,
{{ alias }}.reading_seq
{%- endmacro %}
