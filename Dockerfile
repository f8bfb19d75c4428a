# The project on Airflow's official image, with the same pinned dependencies as `make install`.
# Secrets never go into the image: docker-compose.yml passes them from `.env` at run time.

# The data docs' scripts, styles and fonts at the versions package-lock.json pins, as
# `make install` gets them (npm ci): the quality pages load them from the project's
# node_modules/, never from a public CDN (include/vbatt/quality/assets.py).
FROM node:22-bookworm-slim AS data-docs-assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

FROM apache/airflow:3.3.2-python3.11
# the project's folder belongs to the airflow user: the editable install and dbt write there
USER root
# the folders the named volumes mount exist here, owned by airflow: an empty volume takes
# its owner from the image, so the tasks (user 50000) can write drops, files and backups
RUN mkdir -p /opt/vbatt/drop /opt/vbatt/outbox /opt/vbatt/backups \
    && chown -R airflow:root /opt/vbatt
USER airflow
COPY --chown=airflow:root requirements.txt pyproject.toml /opt/vbatt/
COPY --chown=airflow:root include /opt/vbatt/include
COPY --from=data-docs-assets --chown=airflow:root /assets/node_modules /opt/vbatt/node_modules
RUN pip install --no-cache-dir -r /opt/vbatt/requirements.txt \
    && pip install --no-cache-dir --no-deps --no-build-isolation -e /opt/vbatt
COPY --chown=airflow:root dbt /opt/vbatt/dbt
# the quality gates' suites (Great Expectations), read from VBATT_HOME/expectations
COPY --chown=airflow:root expectations /opt/vbatt/expectations
# Cosmos renders battery_ledger from the manifest instead of calling `dbt ls` on every parse.
RUN cd /opt/vbatt && DBT_PROFILES_DIR=dbt dbt parse --project-dir dbt --quiet
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
ENV VBATT_HOME=/opt/vbatt \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    PYTHONPATH=/opt/airflow/plugins
