"""`make airflow`: the Airflow UI on this machine, wired to the warehouse and a simulated cloud.

Starts the embedded warehouse and the simulated smart-me cloud (port 8765), sets Airflow's
home, DAG and plugin folders and the two connections in the environment, migrates the
metadata database and runs ``airflow standalone`` (it prints the admin password). Stop it
with Ctrl-C; the simulator stops with it, the warehouse keeps running.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SIMULATOR_PORT = 8765


def main() -> int:
    from vbatt import airflow_local
    from vbatt.simulator import start_in_background
    from vbatt.simulator.app import DEMO_API_KEY
    from vbatt.warehouse.embedded import warehouse_url

    url = warehouse_url()
    smartme_url, stop = start_in_background(
        meters=6, seed=42, extra_args=("--port", str(SIMULATOR_PORT))
    )
    try:
        airflow_local.configure(url, smartme_url, DEMO_API_KEY)
        airflow_local.migrate_metadata()
        print(f"warehouse: {url}\nsimulated smart-me cloud: {smartme_url}", flush=True)
        airflow = Path(sys.executable).with_name("airflow")
        return subprocess.call([str(airflow), "standalone"])
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
