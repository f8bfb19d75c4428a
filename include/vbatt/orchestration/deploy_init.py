"""`python -m vbatt.orchestration.deploy_init`: what a new or upgraded deployment needs before Airflow starts.

The ``init`` service of docker-compose.yml runs it once per ``docker compose up``; it is
idempotent, so running it again (after an upgrade, say) only applies what is missing:

1. Airflow's metadata database: ``airflow db migrate``;
2. the pool that caps concurrent smart-me fetches across all workers;
3. the warehouse's raw layer: the project's migrations (``WAREHOUSE_URL``);
4. the connections ``warehouse_default`` (from ``WAREHOUSE_URL``) and ``smartme_default``
   (from ``SMARTME_URL`` and ``SMARTME_API_KEY``), stored encrypted in the metadata
   database, replaced when they changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from rich.console import Console

console = Console(highlight=False)


class InitError(RuntimeError):
    pass


def _airflow(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    from vbatt.orchestration.airflow_env import airflow_executable

    result = subprocess.run(
        [airflow_executable(), *args], capture_output=True, text=True, env=os.environ
    )
    if check and result.returncode != 0:
        raise InitError(f"airflow {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result


def connections() -> dict[str, dict]:
    """The two connections from the settings (the env file of the deployment)."""
    from vbatt.orchestration.airflow_env import smartme_connection, warehouse_connection
    from vbatt.settings import get_settings, smartme_credentials
    from vbatt.warehouse.embedded import warehouse_url

    settings = get_settings()
    if not settings.warehouse_url:
        raise InitError("set WAREHOUSE_URL (postgresql://user:password@host:port/database)")
    try:
        smartme = smartme_credentials()
    except ValueError:
        smartme = {}
    if smartme.get("auth") != "api_key":
        raise InitError("set SMARTME_API_KEY: the deployment's smart-me connection uses an API key")
    return {
        settings.warehouse_conn_id: warehouse_connection(warehouse_url()),
        settings.smartme_conn_id: smartme_connection(smartme["base_url"], smartme["api_key"]),
    }


def main() -> int:
    from vbatt.orchestration.airflow_env import create_pools
    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.embedded import warehouse_url
    from vbatt.warehouse.migrate import migrate

    settings = get_settings()
    try:
        wanted = connections()
        _airflow("db", "migrate")
        console.log("Airflow metadata database migrated")
        create_pools()
        console.log(f"pool {settings.smartme_pool}: {settings.smartme_pool_slots} slots")
        applied = migrate(get_engine(warehouse_url()))
        console.log(f"warehouse migrated ({', '.join(applied) or 'up to date'})")
        for conn_id, conn in wanted.items():
            _airflow("connections", "delete", conn_id, check=False)
            _airflow("connections", "add", conn_id, "--conn-json", json.dumps(conn))
            console.log(f"connection {conn_id} ({conn['conn_type']}, {conn['host']})")
    except InitError as exc:
        console.print(f"[red]init failed: {exc}[/red]")
        return 1
    console.log("ready: start the other services")
    return 0


if __name__ == "__main__":
    sys.exit(main())
