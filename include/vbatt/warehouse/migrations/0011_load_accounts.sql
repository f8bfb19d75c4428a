-- What each load and each file did with every value (issue 14): values used per register,
-- ignored per reason (not electricity, reactive energy, a product code, a register or a
-- quantity type this project does not use, ...) and quarantined per reason. The account
-- is a JSON object {"used": {register: n}, "ignored": {reason: n}, "quarantined": {reason: n}}.

alter table {raw}.files
    add column if not exists values_used        bigint not null default 0,
    add column if not exists values_ignored     bigint not null default 0,
    add column if not exists values_quarantined bigint not null default 0,
    add column if not exists account            jsonb  not null default '{}'::jsonb;

alter table {raw}.loads
    add column if not exists values_ignored bigint not null default 0,
    add column if not exists account        jsonb;

comment on column {raw}.files.account is
    'used per register, ignored and quarantined per reason: {"used": {..}, "ignored": {..}, "quarantined": {..}}';
comment on column {raw}.loads.account is
    'for file loads: the same account as raw.files.account; null for API windows';
