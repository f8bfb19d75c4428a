"""`make airflow`: the Airflow UI on this machine, wired to the warehouse and a simulated cloud.

Starts the embedded warehouse and the simulated smart-me cloud (port 8765), sets Airflow's
home, DAG and plugin folders and the two connections in the environment, migrates the
metadata database and runs ``airflow standalone`` (it prints the admin password). The UI
listens on 127.0.0.1:8080 unless AIRFLOW__API__HOST / AIRFLOW__API__PORT say otherwise. Stop
it with Ctrl-C; the simulator stops with it, the warehouse keeps running.
"""

from __future__ import annotations

import os
import subprocess
import sys

SIMULATOR_PORT = 8765
UI_HOST = "127.0.0.1"  # a development UI with a generated admin password stays on this machine
UI_PORT = "8080"


def main() -> int:
    from vbatt.orchestration import airflow_env
    from vbatt.simulator import start_in_background
    from vbatt.simulator.app import DEMO_API_KEY
    from vbatt.warehouse.embedded import warehouse_url

    url = warehouse_url()
    smartme_url, stop = start_in_background(
        meters=6, seed=42, extra_args=("--port", str(SIMULATOR_PORT))
    )
    try:
        airflow_env.configure(url, smartme_url, DEMO_API_KEY)
        airflow_env.migrate_metadata()
        print(f"warehouse: {url}\nsimulated smart-me cloud: {smartme_url}", flush=True)
        os.environ.setdefault("AIRFLOW__API__HOST", UI_HOST)
        os.environ.setdefault("AIRFLOW__API__PORT", UI_PORT)
        host, port = os.environ["AIRFLOW__API__HOST"], os.environ["AIRFLOW__API__PORT"]
        print(f"Airflow UI: http://{host}:{port} (Ctrl-C stops)", flush=True)
        return subprocess.call([airflow_env.airflow_executable(), "standalone"])
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
