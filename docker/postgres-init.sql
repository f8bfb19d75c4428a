-- Airflow keeps its metadata beside the warehouse, in its own database.
create database airflow;
