{#- The UTC quarter hour (rule book, step 1) that contains ts. -#}
{% macro interval_floor(ts) -%}
date_bin(interval '{{ var("interval_minutes") }} minutes', {{ ts }}, timestamptz '2000-01-01 00:00:00+00')
{%- endmacro %}

{% macro interval_length() -%}
interval '{{ var("interval_minutes") }} minutes'
{%- endmacro %}

{#- 00:00 local time of a local date, as an absolute instant. -#}
{% macro local_midnight(date_expr, tz) -%}
(({{ date_expr }})::timestamp at time zone {{ tz }})
{%- endmacro %}

{#- The anniversary of a date in a given year; 29 Feb becomes 28 Feb in other years. -#}
{% macro anniversary(date_expr, year_expr) -%}
make_date(
    {{ year_expr }},
    extract(month from {{ date_expr }})::int,
    least(
        extract(day from {{ date_expr }})::int,
        extract(day from (make_date({{ year_expr }}, extract(month from {{ date_expr }})::int, 1)
                          + interval '1 month' - interval '1 day'))::int
    )
)
{%- endmacro %}
