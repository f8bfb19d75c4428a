"""The battery ledger: the dbt project run against a warehouse, and ``vbatt simulate``."""
