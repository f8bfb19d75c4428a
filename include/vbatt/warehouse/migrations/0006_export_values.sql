-- What an issue's files say, independent of how they say it: a fingerprint of the values
-- (vbatt.exports.fingerprint). A period is re-issued as a correction when its values
-- change, never because a renderer now writes the same values differently (a rounding
-- rule, a new field). Issues recorded before this column have none; the first re-run
-- adopts one (see docs/partners.md, "Corrections").
alter table {raw}.export_files add column if not exists values_sha256 text;
