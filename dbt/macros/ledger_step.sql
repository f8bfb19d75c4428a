{#-
  Rule book, step 2: how one interval moves the battery. These two expressions are the
  only statement of the rule: the level aggregate (create_ledger_functions) and the ledger
  model both expand them, so the level and the flows come from the same arithmetic.
  capacity = 0 means unlimited.
-#}
{% macro ledger_charge(base, net, capacity) -%}
(case when {{ net }} >= 0
      then case when {{ capacity }} > 0 then least({{ net }}, {{ capacity }} - {{ base }})
                else {{ net }} end
      else 0::double precision end)
{%- endmacro %}

{#- The level an interval starts from: 0 after a reset, the version's capacity when a
    version boundary clips it, else the previous level. -#}
{% macro ledger_base(previous, is_reset, is_clip, capacity) -%}
(case when {{ is_reset }} then 0::double precision
      when {{ is_clip }} and {{ capacity }} > 0 and {{ previous }} > {{ capacity }} then {{ capacity }}
      else {{ previous }} end)
{%- endmacro %}

{% macro ledger_discharge(base, net) -%}
(case when {{ net }} < 0 then least(-{{ net }}, {{ base }}) else 0::double precision end)
{%- endmacro %}


{#-
  The level is a two-sided clamped running sum: no window formula computes it in O(n)
  (docs/clamped-running-sum.md). A PL/pgSQL step function used as an aggregate over an
  ordered ROWS window is the fastest exact method measured on PostgreSQL, and dbt has no
  resource for aggregates, so this macro creates it before every run (on-run-start).
-#}
{% macro create_ledger_functions() %}
{% set s = target.schema %}
-- Cosmos runs every model as its own dbt invocation, several at once on the workers: one
-- creator at a time, or PostgreSQL fails the others with "tuple concurrently updated".
-- The hook is one query string, so one transaction: the lock holds to its end.
select pg_advisory_xact_lock(hashtext('vbatt-ledger-functions'));
create schema if not exists {{ s }};

create or replace function {{ s }}.vbatt_level_step(
    level double precision,
    net double precision,
    capacity double precision,
    is_reset boolean,
    seed double precision
) returns double precision
language plpgsql immutable parallel safe as $fn$
declare
    base double precision := case when is_reset then 0 else coalesce(level, seed) end;
begin
    return base + {{ ledger_charge('base', 'net', 'capacity') }}
                - {{ ledger_discharge('base', 'net') }};
end
$fn$;

create or replace aggregate {{ s }}.vbatt_level(
    double precision, double precision, boolean, double precision
) (sfunc = {{ s }}.vbatt_level_step, stype = double precision);

-- Across versions (rule book, "Configuration over time"): at a version's first interval
-- (is_clip) a level above the new, non-zero capacity is clipped to it (the excess is
-- forfeited); a reset on the same interval empties the battery first.
create or replace function {{ s }}.vbatt_level_step(
    level double precision,
    net double precision,
    capacity double precision,
    is_reset boolean,
    is_clip boolean,
    seed double precision
) returns double precision
language plpgsql immutable parallel safe as $fn$
declare
    base double precision := {{ ledger_base('coalesce(level, seed)', 'is_reset', 'is_clip', 'capacity') }};
begin
    return base + {{ ledger_charge('base', 'net', 'capacity') }}
                - {{ ledger_discharge('base', 'net') }};
end
$fn$;

create or replace aggregate {{ s }}.vbatt_level(
    double precision, double precision, boolean, boolean, double precision
) (sfunc = {{ s }}.vbatt_level_step, stype = double precision);
{% endmacro %}
