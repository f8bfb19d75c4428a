"""`make cluster-test` in parts: local processes, Airflow runs, warehouses, the reference run.

The orchestration is ``vbatt.orchestration.cluster.cluster_test``.
"""
