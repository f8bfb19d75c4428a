-- A battery's meter is checked against the other partners' batteries on every write
-- (vbatt.warehouse.versions: a meter's readings belong to one partner at a time). These
-- indexes keep that a probe, not a scan of every battery, when thousands are imported.
create index if not exists battery_versions_meter on {raw}.battery_versions (meter_id);
create index if not exists batteries_meter on {raw}.batteries (meter_id);
