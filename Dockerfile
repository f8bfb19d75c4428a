# The project on Airflow's official image, with the same pinned dependencies as `make install`.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt pyproject.toml /opt/vbatt/
COPY --chown=airflow:root include /opt/vbatt/include
RUN pip install --no-cache-dir -r /opt/vbatt/requirements.txt \
    && pip install --no-cache-dir --no-deps --no-build-isolation -e /opt/vbatt
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root dbt /opt/vbatt/dbt
ENV VBATT_HOME=/opt/vbatt \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    PYTHONPATH=/opt/airflow/plugins
