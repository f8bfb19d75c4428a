"""`vbatt warehouse psql`: PostgreSQL's own shell on the warehouse, for analysts.

A fresh machine has no PostgreSQL client, and the embedded warehouse listens on a socket
in its own folder, so "just run psql" needs a client and a URL taken apart by hand. The
embedded server's wheel brings psql 18 (it talks to servers from 9.2 on); the connection
is the one every other command uses (WAREHOUSE_URL, else the embedded warehouse), the
password goes through the environment, never the command line. A SQL file runs with
``ON_ERROR_STOP``: its first error ends it, with psql's exit code 3, instead of running
the statements after it on a state the author did not expect.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vbatt.warehouse.backup import connection_args, pg_binary


def psql_command(url: str, script: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The psql command line for ``url`` (a SQLAlchemy or libpq URL) and the environment
    it needs beside the current one; with ``script``, psql runs that file and stops at its
    first error."""
    args, env = connection_args(url)
    cmd = [pg_binary("psql"), *args]
    if script is not None:
        if not script.is_file():
            raise FileNotFoundError(2, "No such SQL file", str(script))
        cmd += ["--set", "ON_ERROR_STOP=1", "--file", str(script)]
    return cmd, env


def run_psql(url: str, script: Path | None = None) -> int:
    """psql on the terminal (or on the file ``script``); its exit code: 0 done, 1 psql's
    own error, 2 the connection lost, 3 an error in the script."""
    cmd, env = psql_command(url, script)
    return subprocess.run(cmd, env=os.environ | env).returncode
