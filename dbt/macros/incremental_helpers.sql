{#-
  Watermarks of incremental models. Every row is stamped with the run's start
  (computed_at); a run picks up upstream rows stamped after its own newest stamp, so each
  run processes what changed since the previous one, whatever produced the change.

  The watermark is read before the model's statement and written into it as a literal:
  with a literal the planner sees that few rows are newer and uses the computed_at (or
  load_id) index; with a subquery it guesses a third of the table and scans all of it,
  which makes a run's cost grow with the history.
-#}
{% macro _scalar(sql, default) -%}
{%- if execute -%}
{%- set rows = run_query(sql).rows -%}
{%- set value = rows[0][0] if rows | length > 0 else none -%}
{{ return(default if value is none else value) }}
{%- else -%}
{{ return(default) }}
{%- endif -%}
{%- endmacro %}

{% macro last_computed_at() -%}
'{{ _scalar("select max(computed_at)::text from " ~ this, "-infinity") }}'::timestamptz
{%- endmacro %}

{#- The raw load watermark of the newest run. -#}
{% macro last_max_load_id() -%}
{{ _scalar("select max_load_id from " ~ this ~ " order by computed_at desc limit 1", 0) }}
{%- endmacro %}

{% macro run_stamp() -%}
'{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}

{#-
  Post-hook of the incremental models: statistics after a full build or a run that wrote
  more than a tenth of the table (autovacuum's own rule), not after every small run. An
  ANALYZE samples the whole table, so it cost as much on a quarter hour as on a year; the
  watermark predicates need no fresh statistics (beyond the histogram the planner reads
  the index's actual end).
-#}
{% macro analyze_if_changed() -%}
{%- if is_incremental() -%}
do $analyze$
begin
    -- this run's rows (>=, not =: beyond the histogram the planner probes the index's
    -- end and counts through the index; with = it guessed from the statistics and scanned)
    if (select count(*) from {{ this }} where computed_at >= {{ run_stamp() }})
       > 0.1 * greatest(
           (select reltuples from pg_class where oid = '{{ this.schema }}.{{ this.identifier }}'::regclass),
           0)
    then
        analyze {{ this }};
    end if;
end
$analyze$
{%- else -%}
analyze {{ this }}
{%- endif -%}
{%- endmacro %}

{#-
  dbt's delete+insert, with statistics on its temporary relation first: unanalyzed, a
  few hundred new rows looked like thousands to the planner, which then read the whole
  target (a hash join) to find the rows they replace instead of probing its unique index.
-#}
{% macro postgres__get_incremental_delete_insert_sql(arg_dict) -%}
analyze {{ arg_dict["temp_relation"] }};
{{ default__get_incremental_delete_insert_sql(arg_dict) }}
{%- endmacro %}


{#-
  A pre-hook for a model whose full build aggregates a whole big table into few rows:
  hashing every row is the cheapest plan, but an index in the right order leads the
  planner to sort them all instead (battery_daily at 200 x 365: 7.5 s against 11 s,
  docs/clamped-running-sum.md). For the model's own transaction only; an incremental run
  keeps the planner's choice.
-#}
{% macro aggregate_by_hash_in_full_build() -%}
{%- if not is_incremental() -%}
set local enable_sort = off;
set local enable_incremental_sort = off;
set local enable_mergejoin = off
{%- endif -%}
{%- endmacro %}
