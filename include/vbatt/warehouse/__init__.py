"""The PostgreSQL warehouse: where it runs, its raw layer, and fast loading."""

from vbatt.warehouse.embedded import warehouse_url  # noqa: F401
