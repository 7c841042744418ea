"""compose.yaml describes a deployment that can work: there is no Docker engine to run it here,
so these tests read it and check what `docker compose up` would trip over."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path
from typing import Any

import javaproperties
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"

REQUIRED_SERVICES = {
    "kafka",
    "postgres",
    "redis",
    "migrate",
    "bridge",
    "worker",
    "scheduler",
    "flower",
}
JOBEXEC_COMMANDS = {
    ("bridge",),
    ("worker",),
    ("scheduler",),
    ("db", "upgrade"),
    ("flower",),
    ("dev",),
    ("console",),
}
CELERY_COMMANDS = {"worker", "flower", "beat", "inspect", "status", "events"}


def _load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _load()["services"]
    return services


def _app_services() -> dict[str, dict[str, Any]]:
    """Services built from this repository, as opposed to third-party images."""
    return {name: s for name, s in _services().items() if "build" in s}


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every bind mount; named volumes left out."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        elif volume.get("type", "bind") == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        if source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def test_given_the_compose_file_then_every_required_service_is_there() -> None:
    assert not REQUIRED_SERVICES - set(_services()), "missing services"


def test_given_the_app_services_then_they_build_from_the_repository_dockerfile() -> None:
    apps = _app_services()

    assert {"migrate", "bridge", "worker", "scheduler", "flower"} <= set(apps)
    for name, service in apps.items():
        build = service["build"]
        dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"


@pytest.mark.parametrize("name", sorted(_app_services()))
def test_given_an_app_service_then_its_command_is_a_real_jobexec_or_celery_command(
    name: str,
) -> None:
    argv = _argv(_app_services()[name]["command"])

    if argv[0] == "jobexec":
        assert any(tuple(argv[1 : 1 + len(c)]) == c for c in JOBEXEC_COMMANDS), argv
    else:
        assert argv[:3] == ["celery", "-A", "workers.app"], argv
        assert argv[3] in CELERY_COMMANDS, argv


def test_given_the_roles_then_each_runs_the_command_the_contract_names() -> None:
    services = _services()

    assert _argv(services["migrate"]["command"]) == ["jobexec", "db", "upgrade"]
    assert _argv(services["bridge"]["command"]) == ["jobexec", "bridge"]
    assert _argv(services["scheduler"]["command"]) == ["jobexec", "scheduler"]
    assert _argv(services["worker"]["command"])[:2] == ["jobexec", "worker"]
    assert _argv(services["flower"]["command"])[:2] == ["jobexec", "flower"]


@pytest.mark.parametrize("name", sorted(_services()))
def test_given_a_bind_mount_then_its_host_path_exists_in_the_repository(name: str) -> None:
    for source, _target in _bind_mounts(_services()[name]):
        assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


@pytest.mark.parametrize("name", sorted(_app_services()))
def test_given_an_app_service_then_spring_config_location_names_exactly_its_mounted_files(
    name: str,
) -> None:
    service = _app_services()[name]
    location = _environment(service)["SPRING_CONFIG_LOCATION"]
    named = [entry.strip().removeprefix("file:") for entry in location.split(",")]
    mounted = {target for _source, target in _bind_mounts(service)}

    assert named == ["/config/application.properties", "/config/secrets.properties"]
    assert set(named) == {t for t in mounted if t.endswith(".properties")}
    assert all(volume.endswith(":ro") for volume in service["volumes"] if isinstance(volume, str))


def test_given_the_mounted_files_then_they_hold_the_settings_the_services_need() -> None:
    app = javaproperties.loads((ROOT / "deploy/config/application.properties").read_text())
    secrets = javaproperties.loads((ROOT / "deploy/config/secrets.properties").read_text())

    assert app["configs.jobDb.url"] == "jdbc:postgresql://postgres:5432/"
    assert app["configs.jobDb.name"] == _environment(_services()["postgres"])["POSTGRES_DB"]
    assert app["configs.kafka.bootstrap-servers"] == "kafka:9092"
    assert app["configs.celery.broker-url"] == "redis://redis:6379/0"
    assert set(secrets) >= {"secrets.datasource.username", "secrets.datasource.password"}
    assert all(key.startswith("secrets.") for key in secrets)
    assert not [key for key in app if key.startswith("secrets.")]


def test_given_the_worker_then_it_scales_without_a_fixed_name_or_host_port() -> None:
    worker = _services()["worker"]

    assert "container_name" not in worker
    assert not worker.get("ports")


def test_given_flower_then_its_port_is_published_on_the_hosts_loopback_only() -> None:
    flower = _services()["flower"]
    ports = [str(p) for p in flower.get("ports", [])]

    assert ports, "Flower's port is not published"
    for port in ports:
        host_ip, _host_port, container_port = port.split(":")
        assert host_ip == "127.0.0.1" and container_port == "5555", port
    # Inside its container Flower binds every interface, or the published port cannot reach it.
    env = _environment(flower)
    assert env["CONFIGS_FLOWER_ADDRESS"] == "0.0.0.0"
    assert env["CONFIGS_FLOWER_PORT"] == "5555"


def test_given_every_web_surface_then_it_runs_behind_basic_auth_from_the_mounted_secrets() -> None:
    secrets = javaproperties.loads((ROOT / "deploy/config/secrets.properties").read_text())

    # `jobexec flower` refuses to start without both; a bare `celery flower` has no auth at all.
    assert secrets["secrets.flower.username"] and secrets["secrets.flower.password"]
    assert ":" not in secrets["secrets.flower.username"]
    for name, service in _services().items():
        argv = _argv(service["command"]) if "command" in service else []
        assert "flower" not in argv or argv[:2] == ["jobexec", "flower"], (name, argv)
        assert not any(a.startswith("--basic_auth") for a in argv), name
        assert "FLOWER_BASIC_AUTH" not in _environment(service), name


def test_given_the_metrics_servers_then_they_keep_the_loopback_default_their_probes_use() -> None:
    app = javaproperties.loads((ROOT / "deploy/config/application.properties").read_text())

    assert app.get("configs.metrics.host", "127.0.0.1") == "127.0.0.1"
    for name in ("bridge", "scheduler"):
        assert "http://127.0.0.1:" in " ".join(_services()[name]["healthcheck"]["test"]), name


def test_given_redis_then_it_persists_with_appendonly_and_never_evicts_tasks() -> None:
    argv = _argv(_services()["redis"]["command"])

    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"


def test_given_dependencies_then_they_wait_for_health_and_for_the_migrations() -> None:
    services = _services()

    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("bridge", "worker", "scheduler"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    for name in ("kafka", "postgres", "redis"):
        assert "healthcheck" in services[name], name
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_given_kafka_then_it_runs_kraft_as_a_single_broker_and_controller() -> None:
    kafka = _services()["kafka"]
    env = _environment(kafka)

    assert kafka["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_given_bridge_and_scheduler_then_their_health_checks_probe_the_configured_port() -> None:
    with (ROOT / "deploy" / "config" / "application.properties").open() as fh:
        port = javaproperties.load(fh)["configs.metrics.port"]
    for name in ("bridge", "scheduler"):
        check = " ".join(_services()[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in check
    worker_check = " ".join(_services()["worker"]["healthcheck"]["test"])
    assert "celery -A workers.app inspect ping" in worker_check


def test_given_kafka_then_its_cluster_id_is_a_kraft_uuid() -> None:
    cluster_id = _environment(_services()["kafka"])["CLUSTER_ID"]

    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # a UUID's 16 bytes


def test_given_kafka_then_the_host_reaches_it_on_loopback_only() -> None:
    kafka = _services()["kafka"]
    env = _environment(kafka)

    assert kafka["ports"] == ["127.0.0.1:29092:29092"]
    assert "HOST://localhost:29092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "HOST:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]


def test_given_the_build_context_then_local_state_and_secrets_stay_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()

    for entry in (".git", ".venv", "*.properties", ".jobexec-dev", "tests"):
        assert entry in ignored
    copied = (ROOT / "deploy" / "Dockerfile").read_text()
    for needed in ("pyproject.toml", "README.md", "constraints.txt", "jobexec", "executors"):
        assert needed in copied and needed not in ignored


def test_the_second_worker_drains_the_queue_the_http_route_names() -> None:
    props = javaproperties.loads(
        (ROOT / "deploy" / "config" / "application.properties").read_text(encoding="utf-8")
    )
    worker = _argv(_services()["worker-http"]["command"])
    default_worker = _argv(_services()["worker"]["command"])

    queues = worker[worker.index("-Q") + 1].split(",")
    assert queues == [props["configs.celery.routes.http"]]
    assert props["configs.celery.queue"] not in queues
    assert "-Q" not in default_worker, "the default worker drains configs.celery.queue"
    assert worker[worker.index("-n") + 1].startswith("http@"), "a node name of its own"
