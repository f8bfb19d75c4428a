-- The models find new readings by `load_id > watermark` (int_meter_readings, the quality
-- quarantine): a range at the end of an append-only table, where load ids grow with the
-- physical order. A BRIN index (a min and max per 128 pages) answers that as well as a
-- btree for a quarter hour's or a day's loads, is a few hundred kilobytes instead of
-- hundreds of megabytes, and a big load builds it again in a third of the time
-- (docs/scaling.md, "Loading a readings file"). Rows of a load that land in an earlier
-- page (space freed by an aborted load) widen that page range: it is read again, never
-- missed.
drop index if exists {raw}.meter_readings_load;
create index meter_readings_load on {raw}.meter_readings using brin (load_id);
