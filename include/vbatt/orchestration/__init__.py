"""What runs the stages: the DAGs' functions, Airflow on this machine, deployment, alerts."""
