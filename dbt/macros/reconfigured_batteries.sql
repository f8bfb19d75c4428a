{#-
  A pre-hook for incremental models keyed by battery: when a battery's configuration
  changed (its config_hash differs from the one stored with its newest row), all its rows
  go, and the model rebuilds that battery from its start. One index probe per battery,
  so the cost does not grow with the history.
-#}
{% macro delete_reconfigured_batteries(order_column) %}
{% if is_incremental() %}
delete from {{ this }}
where battery_id in (
    select batteries.battery_id
    from {{ ref('stg_raw__batteries') }} as batteries
    cross join lateral (
        select stored.config_hash
        from {{ this }} as stored
        where stored.battery_id = batteries.battery_id
        order by stored.{{ order_column }} desc
        limit 1
    ) as newest
    where newest.config_hash <> batteries.config_hash
)
{% else %}
select 1
{% endif %}
{% endmacro %}
