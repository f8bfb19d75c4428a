{#-
  The newest dbt run that wrote into this relation. Incremental models stamp every row
  with the run's start (computed_at) and pick up upstream rows stamped later, so each run
  processes what changed since the previous one, whatever produced the change.
-#}
{% macro last_computed_at() -%}
(select coalesce(max(computed_at), '-infinity'::timestamptz) from {{ this }})
{%- endmacro %}

{#- The raw load watermark of the newest run (an index probe on computed_at). -#}
{% macro last_max_load_id() -%}
coalesce((select max_load_id from {{ this }} order by computed_at desc limit 1), 0)
{%- endmacro %}

{% macro run_stamp() -%}
'{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}
