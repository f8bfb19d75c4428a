-- The export ledger: every file issued to a partner, and each partner's reference counter.

-- Interchange/document references are unique per partner and never reused.
create table if not exists {raw}.export_references (
    partner_id     text   primary key,
    last_reference bigint not null
);

-- One row per file. An issue is (partner, format_key, period, version); version 1 is the
-- original, later versions are corrections issued when the period's data changed.
create table if not exists {raw}.export_files (
    partner_id   text        not null,
    format_key   text        not null,              -- the partner's format entry (csv, csv-dach, mscons, ...)
    period_label text        not null,              -- 2025-06-01 or 2025-06
    version      integer     not null,
    reference    text        not null,
    created_at   timestamptz not null,              -- the document date written into the file
    file_name    text        not null,
    sha256       text        not null,
    rows         bigint      not null,
    status       text        not null,              -- issued | delivered | superseded
    delivered_to text        not null default '',   -- outbox, sftp://conn/dir
    delivered_at timestamptz,
    recorded_at  timestamptz not null default now(),
    primary key (partner_id, format_key, period_label, version, file_name),
    constraint export_files_status check (status in ('issued', 'delivered', 'superseded'))
);
create index if not exists export_files_period on {raw}.export_files (partner_id, period_label);
