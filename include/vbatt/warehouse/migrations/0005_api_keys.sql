-- API keys of the read API (vbatt.api): one per partner or per customer, stored hashed.
-- A key is shown once when created (`vbatt keys create`); only its SHA-256 is kept, so a
-- copy of this table lets nobody read a battery. key_prefix names the key for people.

create table if not exists {raw}.api_keys (
    key_id      bigserial   primary key,
    key_prefix  text        not null,
    key_hash    text        not null unique,   -- hex SHA-256 of the whole key
    partner_id  text,
    customer_id text,
    label       text        not null default '',
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz,
    constraint api_keys_one_scope check ((partner_id is null) <> (customer_id is null))
);

-- What a key may see is looked up per request: a partner's or a customer's batteries.
create index if not exists batteries_partner on {raw}.batteries (partner_id);
create index if not exists batteries_customer on {raw}.batteries (customer_id);
