-- The write API for partners (vbatt.api.writes): key scopes, an audit log of every write and
-- the answers kept for Idempotency-Key retries.
--
-- A key reads (the default) or reads and writes; only a partner's key may write, a
-- customer's key is always read-only (`vbatt keys create --partner P --write`).

alter table {raw}.api_keys add column if not exists scope text not null default 'read';
alter table {raw}.api_keys drop constraint if exists api_keys_scope;
alter table {raw}.api_keys add constraint api_keys_scope check (
    scope in ('read', 'write') and (scope = 'read' or customer_id is null)
);

-- Every write request that names a key the warehouse knows: who (partner, key), when, what
-- (method, path, battery, body) and how it ended (HTTP status, the answer's error). Refused
-- writes are recorded too, in their own transaction. Append-only.
create table if not exists {raw}.api_audit (
    audit_id        bigserial   primary key,
    at              timestamptz not null default clock_timestamp(),
    key_id          bigint      not null references {raw}.api_keys (key_id),
    key_prefix      text        not null,
    partner_id      text        not null,
    method          text        not null,
    path            text        not null,
    battery_id      text,
    action          text        not null,   -- create_battery, add_version, set_end_date
    request         jsonb,                  -- the body as sent (null when it was not JSON)
    status          integer     not null,   -- the HTTP status answered
    outcome         jsonb,                  -- the answer's body
    idempotency_key text,
    replayed        boolean     not null default false  -- answered from an earlier request
);
create index if not exists api_audit_battery on {raw}.api_audit (battery_id, at);
create index if not exists api_audit_key on {raw}.api_audit (key_id, at);

create or replace function {raw}.api_audit_append_only() returns trigger
language plpgsql as $fn$
begin
    raise exception 'raw.api_audit is append-only';
end
$fn$;
drop trigger if exists api_audit_append_only on {raw}.api_audit;
create trigger api_audit_append_only before update or delete on {raw}.api_audit
    for each row execute function {raw}.api_audit_append_only();

-- The first successful answer to a write per (key, Idempotency-Key): a retry with the same
-- body gets it again and writes nothing; the same key with another body is refused.
create table if not exists {raw}.api_idempotency (
    key_id          bigint      not null references {raw}.api_keys (key_id),
    idempotency_key text        not null,
    request_hash    text        not null,   -- SHA-256 of method, path and the canonical body
    status          integer     not null,
    response        jsonb       not null,
    created_at      timestamptz not null default now(),
    primary key (key_id, idempotency_key)
);
