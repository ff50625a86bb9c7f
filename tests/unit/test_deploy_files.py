"""The deployment files: Dockerfile, compose file, env example, Kubernetes manifests, Procfile, gunicorn settings."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import runpy
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from gunicorn.config import KNOWN_SETTINGS
from gunicorn.glogging import Logger

from app.config import Settings
from app.sources import load_sources
from app.webtier import WEB_TIER_COUNTS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"

SETTINGS_VARIABLES = sorted(f.name.upper() for f in dataclasses.fields(Settings) if f.name != "environ")
# Read by deploy/gunicorn.conf.py rather than by Settings.
GUNICORN_VARIABLES = [
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_WORKER_CONNECTIONS",
    "GUNICORN_KEEPALIVE",
    "FORWARDED_ALLOW_IPS",
    "GUNICORN_ACCESS_LOG",
    "GUNICORN_LOG_LEVEL",
]
SECRET_VARIABLES = {
    "CARECYCLE_API_KEY",
    "LEADRELAY_SOURCE_KEYS",
    "LEADRELAY_OPS_TOKENS",
    "LEADRELAY_ENCRYPTION_KEY",
    "FACEBOOK_APP_SECRET",
    "FACEBOOK_VERIFY_TOKEN",
    "FACEBOOK_ACCESS_TOKEN",
}
SECRET_LOOKING_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD")
# Resident memory of the relay's processes (MiB), measured with /proc (RSS, as `leadrelay bench` reads it) on a web tier
# that took leads and a worker that normalized a Meta lead, the ZIP and phone tables among it
# (app/schemas/ziptable.py keeps the ZIP table small: each held about 200 before it).
WEB_PROCESS_MIB = 105
GUNICORN_MASTER_MIB = 25
WORKER_PROCESS_MIB = 110
WORKER_SCHEDULER_MIB = 50


# --- helpers ----------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def arguments_of(keyword: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile_instructions() if instruction == keyword]


def env_file_values(path: Path) -> dict[str, str]:
    """NAME=value lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not a NAME=value line: {line!r}"
            values[name.strip()] = value
    return values


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/k8s, by `<kind>/<name>`."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                objects[f"{document['kind']}/{document['metadata']['name']}"] = document
    return objects


def pod_spec(name: str) -> dict[str, Any]:
    return dict(manifests()[f"Deployment/{name}"]["spec"]["template"]["spec"])


def only_container(name: str) -> dict[str, Any]:
    containers = pod_spec(name)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def configmap_data(name: str) -> dict[str, str]:
    return dict(manifests()[f"ConfigMap/{name}"]["data"])


# --- Dockerfile -------------------------------------------------------------------------------------


def test_dockerfile_builds_on_python_slim_in_a_build_and_a_runtime_stage():
    stages = arguments_of("FROM")

    assert len(stages) >= 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    assert stages[-1].endswith("AS runtime")


def test_dockerfile_runs_as_a_numeric_non_root_user():
    users = arguments_of("USER")

    assert users, "the image must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0


def test_dockerfile_installs_runtime_dependencies_only():
    runs = " ".join(arguments_of("RUN"))

    assert "pip wheel" in runs and "pip install" in runs
    assert "[test]" not in (DEPLOY / "Dockerfile").read_text()


def test_dockerfile_health_check_runs_the_role_aware_check_the_image_copies():
    # deploy/healthcheck.py asks a web container's /healthz and counts a worker healthy while it runs
    # (tests/unit/test_image_healthcheck.py).
    (healthcheck,) = arguments_of("HEALTHCHECK")

    exec_form = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])

    assert exec_form == ["python", "/app/deploy/healthcheck.py"]
    assert arguments_of("WORKDIR")[-1] == "/app" and "deploy/ deploy/" in arguments_of("COPY")
    assert (DEPLOY / "healthcheck.py").is_file()
    assert "curl" not in healthcheck


def test_dockerfile_runs_leadrelay_web_from_app_with_deploy_beside_it():
    copies = arguments_of("COPY")

    assert arguments_of("WORKDIR")[-1] == "/app"
    assert arguments_of("ENTRYPOINT") == ['["leadrelay"]']
    assert arguments_of("CMD") == ['["web"]']
    assert arguments_of("EXPOSE") == ["8000"]
    for folder in ("app/", "workers/", "deploy/"):
        assert f"{folder} {folder}" in copies
    assert any("PYTHONPATH=/app" in env for env in arguments_of("ENV"))


def test_dockerfile_copies_only_paths_that_exist_and_are_in_the_build_context():
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    sources = []
    for arguments in arguments_of("COPY"):
        if arguments.startswith("--from="):
            continue
        sources += arguments.split()[:-1]

    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert source.rstrip("/") not in ignored, source


def test_dockerignore_keeps_the_virtualenv_git_caches_local_data_and_env_files_out():
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}

    assert {".venv", ".git", ".leadrelay", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".env"} <= ignored


def test_env_files_of_secrets_stay_out_of_the_build_context_and_of_version_control(tmp_path):
    # README.md makes the Kubernetes Secret from `leadrelay.env`; deploy/.env.example is no secret and stays in git.
    assert {"*.env", "**/*.env"} <= {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    shutil.copy(REPO_ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    names = ["leadrelay.env", "deploy/leadrelay.env", "deploy/.env", "deploy/.env.example"]

    ignored = subprocess.run(["git", "check-ignore", *names], cwd=tmp_path, capture_output=True, text=True).stdout

    assert ignored.split() == ["leadrelay.env", "deploy/leadrelay.env", "deploy/.env"]


# --- docker-compose.yml ----------------------------------------------------------------------------


def test_compose_redis_runs_the_shipped_aof_configuration_on_a_named_volume():
    redis = services()["redis"]

    assert redis["image"].startswith("redis:7")
    assert command_of(redis)[:2] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis["volumes"]
    data_volumes = [v.split(":")[0] for v in redis["volumes"] if v.split(":")[1] == "/data"]
    assert data_volumes and data_volumes[0] in compose()["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    command = command_of(redis)
    assert command[command.index("--dir") + 1] == "/data"
    config = (DEPLOY / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", config, re.M)


def test_compose_redis_refuses_writes_past_the_memory_limit_the_env_file_must_set():
    # noeviction refuses writes only past a maxmemory: without one Redis grows until the kernel kills it.
    command = command_of(services()["redis"])
    example = env_file_values(DEPLOY / ".env.example")

    assert command[command.index("--maxmemory") + 1].startswith("${REDIS_MAXMEMORY:?")
    assert re.fullmatch(r"[1-9][0-9]*(mb|gb)", example["REDIS_MAXMEMORY"])
    assert re.search(r"^maxmemory-policy noeviction$", (DEPLOY / "redis.conf").read_text(), re.M)


def test_compose_web_serves_port_8000_after_redis_is_healthy():
    web = services()["web"]

    assert web["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert command_of(web) == ["web"]
    assert "8000:8000" in web["ports"]
    assert web["env_file"] == ".env"
    assert environment_of(web)["REDIS_URL"] == "redis://redis:6379/0"
    assert web["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_compose_runs_two_workers_on_the_same_image_and_environment():
    web = services()["web"]
    workers = [s for s in services().values() if command_of(s)[:1] == ["worker"]]

    assert sum(s.get("deploy", {}).get("replicas", 1) for s in workers) >= 2
    for worker in workers:
        assert worker["image"] == web["image"] and worker["build"] == web["build"]
        assert worker["env_file"] == ".env"
        assert environment_of(worker)["REDIS_URL"] == "redis://redis:6379/0"
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_gives_web_and_workers_the_stop_time_kubernetes_gives_them():
    grace = {
        name: manifests()[f"Deployment/leadrelay-{name}"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        for name in ("web", "worker")
    }

    assert services()["web"]["stop_grace_period"] == f"{grace['web']}s"
    assert services()["worker"]["stop_grace_period"] == f"{grace['worker']}s"


def test_compose_starts_the_sandbox_only_in_its_profile():
    in_profiles = {name for name, s in services().items() if s.get("profiles")}
    sandbox = services()["sandbox"]

    assert in_profiles == {"sandbox"}
    assert sandbox["profiles"] == ["sandbox"]
    assert command_of(sandbox) == ["sandbox", "--host", "0.0.0.0", "--port", "8001"]
    assert "CARECYCLE_BASE_URL=http://sandbox:8001" in (DEPLOY / "docker-compose.yml").read_text()


def test_compose_publishes_the_sandbox_on_the_hosts_loopback_only():
    # Its /_sandbox/records answers anyone, without a key, with the records (personal data) the relay sent it.
    assert services()["sandbox"]["ports"] == ["127.0.0.1:8001:8001"]


def test_compose_writes_no_secret_inline():
    for name, service in services().items():
        for variable, value in environment_of(service).items():
            assert variable not in SECRET_VARIABLES, f"{name}: {variable} belongs in the env file"
            assert not SECRET_LOOKING_NAME.search(variable), f"{name}: {variable} belongs in the env file"
            assert "@" not in value, f"{name}: {variable} carries credentials"


def test_compose_file_is_valid_for_docker_compose(tmp_path):
    binary = shutil.which("docker-compose")
    if binary is None:
        message = "docker-compose is not installed (apt-get install docker-compose); .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # A copy beside an env file made from the example: the real deploy/.env is the operator's, with secrets.
    (tmp_path / "deploy").mkdir()
    for name in ("docker-compose.yml", "redis.conf", "Dockerfile"):
        shutil.copy(DEPLOY / name, tmp_path / "deploy" / name)
    shutil.copy(DEPLOY / ".env.example", tmp_path / "deploy" / ".env")

    result = subprocess.run(
        [binary, "-f", str(tmp_path / "deploy" / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    redis_command = yaml.safe_load(result.stdout)["services"]["redis"]["command"]
    maxmemory = redis_command[redis_command.index("--maxmemory") + 1]
    assert maxmemory == env_file_values(DEPLOY / ".env.example")["REDIS_MAXMEMORY"]  # read from deploy/.env


# --- environment: .env.example and README ----------------------------------------------------------


def test_env_example_lists_every_setting_and_web_tier_variable():
    listed = env_file_values(DEPLOY / ".env.example")

    missing = [v for v in SETTINGS_VARIABLES + GUNICORN_VARIABLES if v not in listed]
    assert not missing, f"add to deploy/.env.example: {missing}"


def test_env_example_leaves_every_secret_empty():
    listed = env_file_values(DEPLOY / ".env.example")

    for variable in SECRET_VARIABLES | {"REDIS_URL"}:
        assert listed[variable] == "", variable


def test_env_example_builds_status_urls_from_the_request_until_told_the_public_url():
    # A loopback URL here handed every partner a statusUrl on 127.0.0.1 once the example was copied as it is.
    listed = env_file_values(DEPLOY / ".env.example")

    assert listed["LEADRELAY_PUBLIC_URL"] == ""


def test_env_example_is_a_valid_configuration():
    settings = Settings.from_env(env_file_values(DEPLOY / ".env.example"))

    assert settings.carecycle_base_url == "https://api.carecycle.ai"
    assert settings.leadrelay_encryption_key == ""


def test_readme_documents_every_setting_and_web_tier_variable():
    readme = (REPO_ROOT / "README.md").read_text()

    missing = [v for v in SETTINGS_VARIABLES + GUNICORN_VARIABLES if f"`{v}`" not in readme]
    assert not missing, f"document in README.md: {missing}"


def test_readme_gives_each_setting_the_default_the_relay_uses():
    readme = (REPO_ROOT / "README.md").read_text()
    shown = dict(re.findall(r"^\| `([A-Z_]+)` \| `([^`|]+)` \|", readme, re.M))

    defaults = Settings()
    for variable in set(shown) & set(SETTINGS_VARIABLES):
        field = variable.lower()
        assert getattr(Settings.from_env({variable: shown[variable]}), field) == getattr(defaults, field), variable


def test_readme_says_how_to_rotate_every_secret_the_relay_reads():
    readme = (REPO_ROOT / "README.md").read_text()
    rotating = readme.split("### Rotating keys", 1)[1].split("\n### ", 1)[0]

    missing = [v for v in sorted(SECRET_VARIABLES) if f"`{v}`" not in rotating]
    assert not missing, f"say how to rotate in README.md, Rotating keys: {missing}"
    # The keys of the sources file's api and google sources live in the variables their `secret_env` names.
    assert "`secret_env`" in rotating


def test_readme_keeps_its_first_run_and_test_commands_first():
    readme = (REPO_ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(.*?)```", readme, re.S)

    assert "leadrelay dev" in commands[0]
    assert commands[1].strip() == "scripts/test"  # .ci/run calls it
    assert readme.index("## Operations guide") > readme.index("## Dependencies")


# --- Kubernetes ------------------------------------------------------------------------------------


def test_k8s_manifests_parse_into_the_expected_objects():
    assert set(manifests()) == {
        "ConfigMap/leadrelay-config",
        "ConfigMap/leadrelay-sources",
        "Deployment/leadrelay-web",
        "Deployment/leadrelay-worker",
        "Secret/leadrelay-secrets",
        "Service/leadrelay-web",
    }


def test_k8s_web_probes_liveness_on_healthz_and_readiness_on_readyz():
    web = only_container("leadrelay-web")
    ports = {p["name"]: p["containerPort"] for p in web["ports"]}

    assert manifests()["Deployment/leadrelay-web"]["spec"]["replicas"] == 2
    assert web["args"] == ["web"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[web[probe]["httpGet"]["port"]] == 8000
    assert {"requests", "limits"} <= set(web["resources"])


def test_k8s_readiness_takes_a_web_pod_out_well_before_liveness_would_restart_it():
    # /healthz waits for a thread like any request: requests stuck on a hung Redis must end first.
    web = only_container("leadrelay-web")

    def tolerated_seconds(probe: str) -> int:
        return int(web[probe]["periodSeconds"] * web[probe]["failureThreshold"])

    assert tolerated_seconds("livenessProbe") >= 2 * tolerated_seconds("readinessProbe")


def test_k8s_service_sends_port_80_to_the_web_pods_port_8000():
    service = manifests()["Service/leadrelay-web"]["spec"]
    web_labels = manifests()["Deployment/leadrelay-web"]["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: p["containerPort"] for p in only_container("leadrelay-web")["ports"]}

    assert service["type"] == "ClusterIP"
    assert service["selector"].items() <= web_labels.items()
    (port,) = service["ports"]
    assert port["port"] == 80 and ports[port["targetPort"]] == 8000


def test_k8s_web_pod_keeps_serving_until_the_service_stopped_sending_to_it_then_drains():
    # gunicorn closes its listening socket on SIGTERM, while the Service and the ingress still send new
    # connections to the pod for a few seconds after it starts terminating: those would be refused.
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    pre_stop = only_container("leadrelay-web")["lifecycle"]["preStop"]["exec"]["command"]

    assert pre_stop[0] == "sleep" and int(pre_stop[1]) >= 5
    grace = pod_spec("leadrelay-web")["terminationGracePeriodSeconds"]
    assert grace > int(pre_stop[1]) + config["graceful_timeout"]


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity (`320Mi`, `1Gi`) in MiB."""
    return float(quantity[:-2]) * {"Mi": 1, "Gi": 1024}[quantity[-2:]]


def assert_asks_for_the_memory_held_and_not_much_more(container: str, held: float) -> None:
    """The container's memory request covers what its processes hold (MiB) with room to spare, but not much more: a
    request far above it reserves node memory nothing uses, so fewer pods fit a node than could run on it."""
    resources = only_container(container)["resources"]
    request, limit = (mebibytes(resources[kind]["memory"]) for kind in ("requests", "limits"))

    assert held * 1.2 <= request <= held * 1.5
    assert limit >= request * 1.25


def test_k8s_web_pod_asks_for_the_memory_its_gunicorn_processes_hold_and_not_much_more():
    processes = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["workers"]

    assert_asks_for_the_memory_held_and_not_much_more(
        "leadrelay-web", processes * WEB_PROCESS_MIB + GUNICORN_MASTER_MIB
    )


def test_k8s_worker_pod_asks_for_the_memory_a_worker_holds_once_it_normalized_a_meta_lead_and_not_much_more():
    # The worker, and the RQ scheduler process it forks.
    assert_asks_for_the_memory_held_and_not_much_more("leadrelay-worker", WORKER_PROCESS_MIB + WORKER_SCHEDULER_MIB)


def test_k8s_workers_run_two_replicas_with_no_http_probe():
    worker = only_container("leadrelay-worker")

    assert manifests()["Deployment/leadrelay-worker"]["spec"]["replicas"] >= 2
    assert worker["args"] == ["worker"]
    assert "ports" not in worker
    for probe in ("livenessProbe", "readinessProbe"):
        assert "httpGet" not in worker.get(probe, {})


@pytest.mark.parametrize("deployment", ["leadrelay-web", "leadrelay-worker"])
def test_k8s_deployments_take_settings_and_secrets_by_reference_only(deployment):
    container = only_container(deployment)

    assert {"configMapRef": {"name": "leadrelay-config"}} in container["envFrom"]
    assert {"secretRef": {"name": "leadrelay-secrets"}} in container["envFrom"]
    for variable in container.get("env", []):
        name = variable["name"]
        assert name not in SECRET_VARIABLES and not SECRET_LOOKING_NAME.search(name), name


@pytest.mark.parametrize("deployment", ["leadrelay-web", "leadrelay-worker"])
def test_k8s_deployments_run_non_root_on_a_read_only_root(deployment):
    pod, container = pod_spec(deployment), only_container(deployment)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = {v["name"]: v.get("value") for v in container.get("env", [])}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for path in ("/tmp", env["PROMETHEUS_MULTIPROC_DIR"]):
        assert "emptyDir" in volumes[mounts[path]], path


@pytest.mark.parametrize("deployment", ["leadrelay-web", "leadrelay-worker"])
def test_k8s_deployments_mount_the_sources_file_where_leadrelay_sources_points(deployment):
    sources_path = Path(configmap_data("leadrelay-config")["LEADRELAY_SOURCES"])
    container, volumes = only_container(deployment), {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}

    assert sources_path == Path("/etc/leadrelay/sources.toml")
    volume = volumes[mounts[str(sources_path.parent)]]
    assert volume["configMap"]["name"] == "leadrelay-sources"
    assert sources_path.name in configmap_data("leadrelay-sources")


def test_k8s_configmap_holds_only_known_non_secret_settings():
    data = configmap_data("leadrelay-config")

    assert set(data) <= set(SETTINGS_VARIABLES + GUNICORN_VARIABLES), set(data) - set(SETTINGS_VARIABLES)
    assert not set(data) & (SECRET_VARIABLES | {"REDIS_URL"})
    assert all(isinstance(value, str) for value in data.values())


def test_k8s_configmap_is_a_valid_configuration():
    data = configmap_data("leadrelay-config")

    settings = Settings.from_env({k: v for k, v in data.items() if k != "LEADRELAY_SOURCES"})

    assert settings.carecycle_rate_limit_per_min == int(data["CARECYCLE_RATE_LIMIT_PER_MIN"])


def test_k8s_secret_example_holds_placeholders_only():
    secret = manifests()["Secret/leadrelay-secrets"]

    assert "data" not in secret
    assert SECRET_VARIABLES | {"REDIS_URL"} <= set(secret["stringData"])
    assert all(value == "" for value in secret["stringData"].values())


def test_k8s_sources_file_loads_and_names_secrets_the_secret_provides(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(configmap_data("leadrelay-sources")["sources.toml"])
    secret_names = set(manifests()["Secret/leadrelay-secrets"]["stringData"])
    named = {
        table["secret_env"] for table in tomllib.loads(path.read_text())["sources"].values() if "secret_env" in table
    }

    registry = load_sources(str(path), {name: "a-secret-0123456789" for name in named}, {})

    assert named <= secret_names
    assert sum(1 for _ in registry) >= 1


# --- Procfile and gunicorn ------------------------------------------------------------------------


def test_procfile_starts_web_and_worker_through_the_leadrelay_command():
    lines = [line for line in (REPO_ROOT / "Procfile").read_text().splitlines() if line.strip()]

    assert lines == ["web: leadrelay web", "worker: leadrelay worker"]


def test_gunicorn_config_binds_port_and_sizes_processes_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))

    assert config["bind"] == "0.0.0.0:9123"
    assert config["workers"] == 3


@pytest.mark.parametrize(("value", "level"), [(" WARNING ", "warning"), ("", "info")])
def test_gunicorn_config_reads_the_log_level_as_check_config_checks_it(monkeypatch, value, level):
    monkeypatch.setenv("GUNICORN_LOG_LEVEL", value)

    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))

    assert Logger.LOG_LEVELS.get(config["loglevel"].lower()) == Logger.LOG_LEVELS[level]


def test_each_web_process_leaves_what_it_built_at_start_out_of_full_garbage_collections():
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    built_at_start = ["a lasting table's row"]

    try:
        config["post_worker_init"](worker=None)

        assert "post_worker_init" in {setting.name for setting in KNOWN_SETTINGS}  # a hook gunicorn calls
        assert gc.get_freeze_count() > 0
        assert not any(tracked is built_at_start for tracked in gc.get_objects())  # what full passes walk
    finally:
        gc.unfreeze()


def test_gunicorn_config_defaults_are_sane(monkeypatch):
    for variable in GUNICORN_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))

    assert config["bind"] == "0.0.0.0:8000"
    assert config["workers"] == 2
    # The counts `leadrelay web` checks before gunicorn starts, with the defaults gunicorn then uses.
    assert {
        "WEB_CONCURRENCY": config["workers"],
        "GUNICORN_THREADS": config["threads"],
        "GUNICORN_WORKER_CONNECTIONS": config["worker_connections"],
        "GUNICORN_KEEPALIVE": config["keepalive"],
    } == WEB_TIER_COUNTS
    assert config["keepalive"] > 60  # past a load balancer's usual idle timeout: it, not gunicorn, closes first
    assert config["worker_class"] == "gthread" and config["threads"] >= 1
    assert 0 < config["graceful_timeout"] < config["timeout"]
    assert config["preload_app"] is False
    assert config["accesslog"] is None
    assert config["forwarded_allow_ips"] == "127.0.0.1,::1"
    grace = pod_spec("leadrelay-web")["terminationGracePeriodSeconds"]
    assert grace > config["graceful_timeout"]
