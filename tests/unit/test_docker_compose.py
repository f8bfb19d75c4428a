"""docker-compose.yml is for servers with Docker (no engine runs here): check what it promises.

The file is parsed as YAML and read the way Compose reads it (anchors merged); the checks
are what `docker compose up` would trip over: services, commands, health checks, the
order of start-up, volumes, paths on the host, and variables the env file must document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
AIRFLOW = {"init", "api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower"}
INFRA = {"postgres", "warehouse", "redis"}
API = "battery-api"  # `vbatt serve`: the API, the dashboard, the realtime receiver
# ${NAME}, ${NAME:-default}, ${NAME:?error}; $${NAME} is the container's own variable
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def command(service: str) -> str:
    cmd = SERVICES[service].get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def test_every_service_of_the_official_layout_is_there():
    assert AIRFLOW | INFRA | {API, "simulator", "log-cleanup"} == set(SERVICES)


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("api-server", "api-server"),
        ("scheduler", "scheduler"),
        ("dag-processor", "dag-processor"),
        ("triggerer", "triggerer"),
        ("worker", "celery worker"),
        ("flower", "celery flower"),
        ("init", "python -m vbatt.orchestration.deploy_init"),
        ("simulator", "python -m vbatt.simulator --host 0.0.0.0 --port 8765"),
        ("log-cleanup", "/clean-logs"),
        (API, "exec vbatt serve --host 0.0.0.0 --port 8800"),
    ],
)
def test_commands(service, expected):
    assert expected in command(service)


def test_the_init_and_simulator_modules_exist():
    for module in ("orchestration/deploy_init", "simulator/__main__"):
        assert (ROOT / "include" / "vbatt" / f"{module}.py").is_file()


def test_airflow_runs_celery_on_redis_with_its_own_metadata_database():
    env = SERVICES["scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert (
        env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        and "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
    )
    # Airflow 3: task runners on the workers report to the API server's execution API
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    assert "@warehouse:5432/vbatt" in env["WAREHOUSE_URL"]
    for service in AIRFLOW:
        assert SERVICES[service]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


@pytest.mark.parametrize("service", sorted(AIRFLOW))
def test_airflow_is_kept_as_quiet_as_on_a_developers_machine(service):
    # the same settings as airflow_env.configure() gives `make demo` and `make airflow`
    from vbatt.orchestration.airflow_env import QUIET

    env = SERVICES[service]["environment"]
    assert {k: str(env.get(k)).lower() for k in QUIET} == {k: v.lower() for k, v in QUIET.items()}


def test_the_warehouse_is_its_own_postgres_with_a_volume():
    warehouse = SERVICES["warehouse"]
    assert warehouse["image"].startswith("postgres:")
    assert "warehouse-data:/var/lib/postgresql/data" in warehouse["volumes"]
    assert "airflow-db:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "C.UTF-8" in warehouse["environment"]["POSTGRES_INITDB_ARGS"]


def test_health_checks_and_start_order():
    for service in (AIRFLOW - {"init"}) | INFRA | {API, "simulator"}:
        check = SERVICES[service].get("healthcheck")
        assert check and check["test"], f"{service} has no health check"
    for service in AIRFLOW - {"init"}:
        depends = SERVICES[service]["depends_on"]
        assert depends["init"]["condition"] == "service_completed_successfully", service
        for infra in INFRA:
            assert depends[infra]["condition"] == "service_healthy", (service, infra)
    assert SERVICES["worker"]["depends_on"]["api-server"]["condition"] == "service_healthy"
    assert SERVICES["init"]["restart"] == "no"
    # the API needs the warehouse migrated (init), nothing of Airflow's
    api = SERVICES[API]["depends_on"]
    assert api["init"]["condition"] == "service_completed_successfully"
    assert api["warehouse"]["condition"] == "service_healthy"
    assert set(api) == {"init", "warehouse"}


def test_the_api_facing_the_internet_holds_no_airflow_secret_or_volume():
    """The API is the one service reached from outside: Airflow's keys, the SMTP password
    and the task volumes (drops, outbox, backups) stay out of it."""
    api = SERVICES[API]
    assert not any(name.startswith("AIRFLOW__") for name in api["environment"])
    assert "SMTP_PASSWORD" not in str(api["environment"])
    assert "volumes" not in api
    assert api["environment"]["WAREHOUSE_URL"] == SERVICES["worker"]["environment"]["WAREHOUSE_URL"]


def test_workers_scale_and_optional_services_sit_behind_profiles():
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert SERVICES["flower"]["profiles"] == ["flower"]
    assert SERVICES["simulator"]["profiles"] == ["demo"]
    for service in set(SERVICES) - {"flower", "simulator"}:
        assert "profiles" not in SERVICES[service], f"{service} would not start by default"


def test_volumes_are_declared_and_shared_where_needed():
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
    worker_volumes = SERVICES["worker"]["volumes"]
    assert "outbox:/opt/vbatt/outbox" in worker_volumes
    assert "drop:/opt/vbatt/drop" in worker_volumes
    assert "airflow-logs:/opt/airflow/logs" in SERVICES["log-cleanup"]["volumes"]
    assert {"outbox", "warehouse-data", "airflow-logs"} <= declared


def test_every_path_mounted_from_the_host_exists():
    mounted = [
        (name, volume.split(":")[0])
        for name, service in SERVICES.items()
        for volume in service.get("volumes", [])
        if volume.startswith((".", "/"))
    ]
    assert mounted, "the project's dags/ and plugins/ are mounted"
    for name, path in mounted:
        assert not path.startswith("/"), f"{name}: an absolute host path is not portable"
        assert (ROOT / path).exists(), f"{name} mounts {path}, which does not exist"


def test_every_variable_is_documented_in_env_example_and_none_is_stale():
    used = set(VARIABLE.findall(COMPOSE_TEXT))
    documented = env_example()
    assert used - set(documented) == set(), "undocumented in .env.example"
    assert set(documented) - used == set(), "documented but not used by docker-compose.yml"
    for name in used:
        comment = re.search(rf"((?:#.*\n)+){name}=", (ROOT / ".env.example").read_text())
        assert comment, f"{name} has no comment in .env.example"


def test_secrets_are_required_from_the_env_file_and_not_committed():
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_TEXT))
    assert {
        "AIRFLOW_DB_PASSWORD",
        "WAREHOUSE_PASSWORD",
        "REDIS_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "SMARTME_API_KEY",
    } <= required
    documented = env_example()
    for name in required:
        assert documented[name] == "", f".env.example must not carry a value for {name}"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_project_variables_are_read_by_settings():
    settings = (ROOT / "include" / "vbatt" / "settings.py").read_text()
    env = SERVICES["worker"]["environment"]
    for name in env:
        if name.startswith("VBATT_") or name == "WAREHOUSE_URL":
            assert f'"{name}"' in settings, f"{name} is set but settings.py never reads it"


def test_dockerfile_uses_the_pinned_airflow_and_requirements_and_no_secrets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned, "requirements.txt pins apache-airflow"
    assert f"FROM apache/airflow:{pinned.group(1)}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile
    assert re.search(
        r"^apache-airflow-providers-celery==", (ROOT / "requirements.txt").read_text(), re.M
    )
    for line in dockerfile.splitlines():
        if line.startswith(("ENV", "ARG", "COPY", "ADD")):
            assert not re.search(r"PASSWORD|SECRET|API_KEY|\.env\b", line), line
    # COPY --from=<stage> copies out of an earlier build stage, not out of the checkout
    for source in re.findall(r"^COPY\s+(?!.*--from=)(?:--\S+\s+)*(.+)\s+\S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_image_serves_the_data_docs_assets_from_the_lock_file():
    """The quality pages load their scripts from node_modules/ under the project's home, as
    `make install` puts them there (npm ci from package-lock.json), never from a CDN."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stage = re.search(r"^FROM (\S+) AS (\S+)$", dockerfile, re.M)
    assert stage, "the Dockerfile has a build stage for the data docs assets"
    body = dockerfile.split(stage.group(0), 1)[1].split("\nFROM ", 1)[0]
    assert "COPY package.json package-lock.json" in body and "npm ci" in body
    home = re.search(r"VBATT_HOME=(\S+)", dockerfile).group(1)
    assert re.search(
        rf"^COPY --from={stage.group(2)} \S* ?\S+/node_modules {home}/node_modules$",
        dockerfile,
        re.M,
    ), "node_modules lands under VBATT_HOME"


def test_readme_deployment_section_names_every_service_and_step():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deployment with Docker", 1)
    assert len(section) == 2, "README.md has a 'Deployment with Docker' section"
    text = section[1].split("\n## ", 1)[0]
    for service in SERVICES:
        assert f"`{service}`" in text, f"README deployment section does not name {service}"
    for step in (
        "cp .env.example .env",
        "docker compose build",
        "docker compose up -d",
        "--scale worker=",
        "--profile flower",
        "--profile demo",
    ):
        assert step in text, f"README deployment section lacks `{step}`"


def test_every_project_folder_the_tasks_read_or_write_is_mounted_and_owned():
    """The partner files reach the tasks; the folders the named volumes mount exist in the
    image (an empty volume takes its owner from there, else root and unwritable)."""
    env = SERVICES["worker"]["environment"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["worker"]["volumes"]}
    for variable in (
        "VBATT_PARTNERS_DIR",
        "VBATT_DROP_DIR",
        "VBATT_OUTBOX_DIR",
        "VBATT_BACKUP_DIR",
    ):
        assert env[variable] in mounts, f"{variable}={env[variable]} is not mounted"
    assert mounts[env["VBATT_PARTNERS_DIR"]] == "./partners"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for variable in ("VBATT_DROP_DIR", "VBATT_OUTBOX_DIR", "VBATT_BACKUP_DIR"):
        assert env[variable] in dockerfile, f"the image does not create {env[variable]}"


def test_deploy_init_finds_airflow_on_path_like_the_official_image():
    source = (ROOT / "include" / "vbatt" / "orchestration" / "deploy_init.py").read_text()
    assert "airflow_executable()" in source and 'with_name("airflow")' not in source


def _published(service: str) -> list[str]:
    return [str(p) for p in SERVICES[service].get("ports", [])]


def _resolved(text: str, env: dict[str, str]) -> str:
    """``${NAME:-default}`` as Compose resolves it with ``env`` as the environment."""
    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], text)


@pytest.mark.parametrize("service", ["warehouse", "flower", API])
def test_the_warehouse_the_api_and_flower_are_published_on_the_loopback_unless_told(service):
    """A bare "5433:5432" publishes on every interface of the host (Docker's default)."""
    (port,) = _published(service)
    address, host_port, container_port = _resolved(port, {}).split(":")
    assert address == "127.0.0.1", port
    assert host_port.isdigit() and container_port.isdigit()
    told = _resolved(port, {"PUBLISH_ADDRESS": "0.0.0.0"})
    assert told.startswith("0.0.0.0:"), told
    assert env_example()["PUBLISH_ADDRESS"] == "127.0.0.1"


def test_the_api_health_check_asks_a_route_that_needs_no_key():
    """`/api/Health` is open like smart-me's probe (tests/api/test_access.py proves it)."""
    from sqlalchemy import create_engine

    from vbatt.api.app import create_app

    (url,) = [part for part in SERVICES[API]["healthcheck"]["test"] if part.startswith("http")]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert url.startswith("http://localhost:8800/"), "the port `vbatt serve` listens on"
    app = create_app(create_engine("postgresql+psycopg2://nobody@/nothing"))
    assert path in {route.path for route in app.routes}


def test_every_project_folder_the_code_reads_is_in_the_image_or_mounted(monkeypatch):
    """Each path of the settings that lies in VBATT_HOME and comes from the checkout (dbt/,
    expectations/, partners/ ...) is copied into the image or mounted: a suite missing from
    the image failed every quality gate in the containers."""
    import subprocess

    from vbatt.settings import get_settings

    dockerfile = (ROOT / "Dockerfile").read_text()
    home = Path(re.search(r"VBATT_HOME=(\S+)", dockerfile).group(1))
    provided = {
        Path(line.split()[-1].rstrip("/"))
        for line in dockerfile.splitlines()
        if line.startswith("COPY")
    }
    for service in ("worker", API):
        provided |= {Path(v.split(":")[1]) for v in SERVICES[service].get("volumes", [])}
        for name, value in SERVICES[service]["environment"].items():
            monkeypatch.setenv(name, _resolved(str(value), {}))
    monkeypatch.setenv("VBATT_HOME", str(home))
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    checked = []
    for name, value in vars(settings).items():
        if name == "root" or not isinstance(value, Path) or not value.is_relative_to(home):
            continue
        relative = value.relative_to(home).as_posix()
        if not any(f == relative or f.startswith(relative + "/") for f in tracked):
            continue  # made at run time (.api, build/), not shipped
        checked.append(name)
        within = [value, *value.parents]
        assert any(p in provided for p in within if p != home), (
            f"settings.{name} = {value}: the image neither copies nor mounts it"
        )
    assert {"dbt_project_dir", "expectations_dir", "partners_dir"} <= set(checked)
