-- The size of each file taken in. Only a file as big as one loaded before can be that
-- file, so the ingest waits for the digest (sha256) of no other before it loads: it is
-- computed beside the load (vbatt.ingest.load.FileDigest). Files recorded before this
-- migration have no size and count as possibly any size.
alter table {raw}.files add column if not exists bytes bigint;
