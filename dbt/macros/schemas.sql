{#
    Create every schema the project's models write to, one caller at a time.

    dbt creates missing schemas at the start of each invocation, before any hook; when
    Airflow runs the models as parallel tasks on a fresh warehouse, two of them may both
    find a schema missing and race on CREATE SCHEMA (a unique violation in pg_namespace).
    battery_ledger runs this first (`dbt run-operation create_project_schemas`), under an
    advisory lock, so the parallel tasks find every schema there.
#}
{% macro create_project_schemas() %}
    {% set schemas = [] %}
    {% for node in graph.nodes.values() %}
        {% if node.resource_type in ('model', 'seed', 'snapshot') and node.schema not in schemas %}
            {% do schemas.append(node.schema) %}
        {% endif %}
    {% endfor %}
    {% call statement('create_project_schemas') %}
        select pg_advisory_xact_lock(hashtext('vbatt-create-schemas'));
        {% for schema in schemas | sort %}
        create schema if not exists {{ adapter.quote(schema) }};
        {% endfor %}
    {% endcall %}
    {% do adapter.commit() %}
    {{ log("schemas ready: " ~ (schemas | sort | join(", ")), info=True) }}
{% endmacro %}
