-- A value refused again (a file re-sent with other bytes: other line ends, another row
-- order, a row more) is not quarantined a second time: vbatt.warehouse.loader
-- quarantine_once looks each refused record up among what the source quarantined before.
-- A hash index, because a record may be kilobytes long (a b-tree takes no such key) and
-- the lookup is by equality only.
create index if not exists rejected_readings_record
    on {raw}.rejected_readings using hash (record);
