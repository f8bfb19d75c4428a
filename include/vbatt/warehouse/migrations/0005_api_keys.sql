-- API keys of the read API (vbatt.api): one per partner or per customer of a partner (customer
-- ids are the partner's own and need not be unique across partners), stored hashed.
-- A key is shown once when created (`vbatt keys create`); only its SHA-256 is kept, so a
-- copy of this table lets nobody read a battery. key_prefix names the key for people.

create table if not exists {raw}.api_keys (
    key_id      bigserial   primary key,
    key_prefix  text        not null,
    key_hash    text        not null unique,   -- hex SHA-256 of the whole key
    partner_id  text        not null,   -- every key belongs to a partner
    customer_id text,                   -- set: only this customer's batteries of the partner
    label       text        not null default '',
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);

-- What a key may see is looked up per request: a partner's or a customer's batteries.
create index if not exists batteries_partner on {raw}.batteries (partner_id);
create index if not exists batteries_customer on {raw}.batteries (customer_id);
