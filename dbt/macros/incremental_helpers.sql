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
