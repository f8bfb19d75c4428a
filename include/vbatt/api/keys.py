"""API keys: one per partner or per customer, stored as a SHA-256 hash only.

A partner's key reads, or reads and writes (scope ``write``, ``vbatt keys create --write``);
a customer's key only reads. A key is 32 random bytes (URL-safe text) behind a readable prefix, ``vb_`` plus 8
characters, which is also stored so a person can tell keys apart in the table. Keys are
random and long, so a plain SHA-256 is enough (nothing to brute-force, unlike passwords)
and lets a request find its key with one index lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from vbatt.warehouse.migrate import check_schema_name

KEY_PREFIX = "vb_"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a partner (all its batteries) or one of its customers (its own only).

    A customer is always a customer *of a partner*: customer ids come from each partner's
    systems and two partners may both have a customer "1001"."""

    partner_id: str
    customer_id: str | None = None
    # a partner's key may be created with --write: it may then add and change batteries
    can_write: bool = False
    # which key asked (for the audit log); None for a principal not read from a key
    key_id: int | None = field(default=None, compare=False)
    key_prefix: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.partner_id:
            raise ValueError("a key belongs to a partner, and optionally to one of its customers")
        if self.can_write and self.customer_id:
            raise ValueError("a customer's key is always read-only; only a partner's key writes")

    @property
    def label(self) -> str:
        if self.customer_id:
            return f"customer {self.customer_id} of partner {self.partner_id}"
        return f"partner {self.partner_id}"


@dataclass(frozen=True)
class CreatedKey:
    key: str  # shown once, never stored
    prefix: str
    principal: Principal


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    engine: Engine, principal: Principal, *, label: str = "", raw_schema: str = "raw"
) -> CreatedKey:
    """Store a new key's hash for ``principal``; the key itself is returned once."""
    raw = check_schema_name(raw_schema)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = key[: len(KEY_PREFIX) + 8]
    with engine.begin() as conn:
        conn.execute(
            text(
                f"insert into {raw}.api_keys"
                " (key_prefix, key_hash, partner_id, customer_id, label, scope)"
                " values (:prefix, :hash, :partner, :customer, :label, :scope)"
            ),
            {
                "prefix": prefix,
                "hash": hash_key(key),
                "partner": principal.partner_id,
                "customer": principal.customer_id,
                "label": label,
                "scope": "write" if principal.can_write else "read",
            },
        )
    return CreatedKey(key, prefix, principal)


def owner_unknown(
    engine: Engine, principal: Principal, partner_files: set[str], *, raw_schema: str = "raw"
) -> str | None:
    """Why a key's owner looks like a typo, or None: a partner with no battery and no
    partner file, a customer with no battery of that partner. The key is made anyway (a
    partner may get its key before its batteries), but the person who typed the id is told,
    since such a key sees nothing."""
    raw = check_schema_name(raw_schema)
    with engine.connect() as conn:
        customers = conn.execute(
            text(f"select distinct customer_id from {raw}.batteries where partner_id = :p"),
            {"p": principal.partner_id},
        ).scalars()
        customers = set(customers)
    if not customers and principal.partner_id not in partner_files:
        return f"partner {principal.partner_id!r} has no battery and no partner file yet"
    if principal.customer_id is not None and principal.customer_id not in customers:
        return (
            f"customer {principal.customer_id!r} has no battery of partner"
            f" {principal.partner_id!r} yet"
        )
    return None


def revoke_key(engine: Engine, prefix: str, *, raw_schema: str = "raw") -> int:
    """Revoke every live key with this prefix; returns how many."""
    raw = check_schema_name(raw_schema)
    with engine.begin() as conn:
        result = conn.execute(
            text(
                f"update {raw}.api_keys set revoked_at = now()"
                " where key_prefix = :prefix and revoked_at is null"
            ),
            {"prefix": prefix},
        )
    return result.rowcount


def lookup_sql(raw_schema: str) -> str:
    raw = check_schema_name(raw_schema)
    return (
        f"select key_id, key_prefix, partner_id, customer_id, scope from {raw}.api_keys"
        " where key_hash = :hash and revoked_at is null"
    )
