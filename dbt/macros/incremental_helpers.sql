{#-
  The newest dbt run that wrote into this relation. Incremental models stamp every row
  with the run's start (computed_at) and pick up upstream rows stamped later, so each run
  processes what changed since the previous one, whatever produced the change.
-#}
{% macro last_computed_at() -%}
(select coalesce(max(computed_at), '-infinity'::timestamptz) from {{ this }})
{%- endmacro %}

{% macro run_stamp() -%}
'{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}
