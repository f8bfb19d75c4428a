-- The smart-me ingest quarantines a refused value once, not on every run that fetches it
-- again (vbatt.warehouse.loader.write_rejections, skip_recorded): it looks up what a
-- source already quarantined for the meters of a load.
create index if not exists rejected_readings_source_meter
    on {raw}.rejected_readings (source, meter_id);
