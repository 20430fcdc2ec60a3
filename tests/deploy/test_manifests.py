"""docker-compose.yml against the Compose specification, the k8s manifests against the Kubernetes schemas,
and the facts they must agree on with the code (services, ports, databases, topics, settings)."""

from __future__ import annotations

import copy
import importlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import vendor

from shared.events.registry import TOPICS, dlq_topic
from shared.settings import ServiceSettings

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVICES = ("handoff", "lifecycle", "metrics", "notifier")
K8S_VERSION = "1.30"


def default_port(service: str) -> int:
    settings_cls: type[ServiceSettings] = importlib.import_module(f"services.{service}.settings").Settings
    return settings_cls.default_port


# --- docker compose ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # resolves the `<<:` merge keys


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((Path(vendor.__file__).parent / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_errors(compose) == []


def test_the_compose_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["handoff"]["depends_on"]["migrate-handoff"]["condition"] = "service_done"
    broken["services"]["metrics"]["healthcheck"]["intervall"] = "5s"
    errors = compose_errors(broken)
    assert any("handoff/depends_on" in e for e in errors) and any("metrics/healthcheck" in e for e in errors)


def test_compose_runs_apache_kafka_in_kraft_mode_and_postgres_with_a_database_per_service(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env and env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith("@kafka:9093")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"] and env["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert "healthcheck" in kafka and "healthcheck" in services["postgres"]
    init_sql = (ROOT / "deploy" / "postgres-init.sql").read_text()
    for name in SERVICES:
        assert f"CREATE DATABASE {name};" in init_sql


def test_every_service_is_migrated_first_checked_for_health_and_has_its_own_database(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    databases = set()
    for name in SERVICES:
        svc, migrate = services[name], services[f"migrate-{name}"]
        assert svc["command"] == [f"services.{name}"]
        assert migrate["command"] == [f"services.{name}", "migrate"] and migrate["restart"] == "no"
        assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert svc["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "kafka-topics": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            f"migrate-{name}": {"condition": "service_completed_successfully"},
        }
        env = svc["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["DATABASE_URL"].endswith(f"@postgres:5432/{name}")
        assert migrate["environment"]["DATABASE_URL"] == env["DATABASE_URL"]
        databases.add(env["DATABASE_URL"])
        port = default_port(name)
        assert env["PORT"] == str(port) and svc["ports"] == [f"{port}:{port}"]
        check = svc["healthcheck"]
        assert not check.get("disable") and "/readyz" in " ".join(check["test"]) and "PORT" in " ".join(check["test"])
        assert env["POSTSALES_API_KEYS"].startswith("${POSTSALES_API_KEYS:?")
    assert len(databases) == len(SERVICES)


def test_the_topics_job_creates_every_registry_topic_and_its_dlq_before_the_services_start(
        compose: dict[str, Any]) -> None:
    job = compose["services"]["kafka-topics"]
    assert job["image"] == compose["services"]["kafka"]["image"] and job["restart"] == "no"
    assert job["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    script = "\n".join(job["command"])
    assert "/opt/kafka/bin/kafka-topics.sh" in script and "--create --if-not-exists" in script
    assert '--topic "$$PREFIX$$1"' in script  # honours KAFKA_TOPIC_PREFIX like the services do
    created = dict(re.findall(r"^\s*create (\S+) (\S+)", script, flags=re.M))
    assert set(created) == set(TOPICS) | {dlq_topic(t) for t in TOPICS}
    assert created["postsales.usage.v1"] == '"$$USAGE_PARTITIONS"'  # the high-volume topic gets its own count
    assert all(created[t] == '"$$PARTITIONS"' for t in TOPICS if t != "postsales.usage.v1")
    assert job["environment"]["PREFIX"] == "${KAFKA_TOPIC_PREFIX:-}"


def test_env_example_defines_every_variable_compose_requires_and_nothing_it_ignores(
        compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text))
    required = set(re.findall(r"(?<!\$)\$\{([A-Z_]+):\?", text))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert required <= example
    assert example <= used, example - used


def test_the_image_is_multi_stage_non_root_and_installs_from_the_lock_file() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert dockerfile.splitlines()[0].startswith("# syntax=docker/dockerfile:")
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.M)) == 2
    assert "-c constraints.txt" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"


# --- Kubernetes -----------------------------------------------------------------------------------

def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == kind}


@pytest.mark.parametrize(("path", "doc"), k8s_documents(),
                         ids=[f"{p}:{d['kind']}/{d['metadata']['name']}" for p, d in k8s_documents()])
def test_every_manifest_validates_against_the_kubernetes_schema(path: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert doc["metadata"].get("namespace", "postsales") == "postsales"


def test_the_kubernetes_schema_check_catches_mistakes() -> None:
    deployment = copy.deepcopy(by_kind("Deployment")["handoff"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_the_kinds_the_suite_needs_are_all_there() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in k8s_documents()}
    assert {("Namespace", "postsales"), ("ConfigMap", "postsales-config"), ("Secret", "postsales-secrets")} <= kinds
    for name in SERVICES:
        assert {("Deployment", name), ("Service", name), ("Job", f"{name}-migrate"),
                ("PodDisruptionBudget", name)} <= kinds


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _secret_refs(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container.get("env", [])
            if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]}


def _assert_hardened(workload: dict[str, Any], container: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[part]), (workload["metadata"]["name"], part)
    assert container["envFrom"] == [{"configMapRef": {"name": "postsales-config"}}]


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_probes_readyz_and_healthz_has_resources_and_its_own_database(name: str) -> None:
    deployment = by_kind("Deployment")[name]
    c = _container(deployment)
    assert c["args"] == [f"services.{name}"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": default_port(name)}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PORT"] == str(default_port(name))
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    _assert_hardened(deployment, c)
    secret = by_kind("Secret")["postsales-secrets"]["stringData"]
    refs = _secret_refs(c)
    assert refs == {"DATABASE_URL": f"{name.upper()}_DATABASE_URL", "POSTSALES_API_KEYS": "POSTSALES_API_KEYS"}
    assert set(refs.values()) <= set(secret)
    assert secret[refs["DATABASE_URL"]].startswith("postgresql+asyncpg://")
    assert secret[refs["DATABASE_URL"]].endswith(f"/{name}")

    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    job_labels = by_kind("Job")[f"{name}-migrate"]["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service")[name]
    for chosen in (selector, service["spec"]["selector"],
                   by_kind("PodDisruptionBudget")[name]["spec"]["selector"]["matchLabels"]):
        assert chosen.items() <= pod_labels.items()
        assert not chosen.items() <= job_labels.items()  # the migration pod never receives traffic
    assert service["spec"]["ports"] == [{"name": "http", "port": default_port(name), "targetPort": "http"}]


@pytest.mark.parametrize("name", SERVICES)
def test_each_migration_job_runs_migrate_on_the_services_database(name: str) -> None:
    job = by_kind("Job")[f"{name}-migrate"]
    c = _container(job)
    assert c["args"] == [f"services.{name}", "migrate"]
    assert c["image"] == _container(by_kind("Deployment")[name])["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1
    assert _secret_refs(c) == {"DATABASE_URL": f"{name.upper()}_DATABASE_URL"}
    _assert_hardened(job, c)


def test_configmap_holds_only_real_settings_and_the_secret_template_holds_no_real_secret() -> None:
    fields = {f.upper() for f in ServiceSettings.model_fields}
    config = by_kind("ConfigMap")["postsales-config"]["data"]
    assert set(config) <= fields, set(config) - fields
    assert config["HOST"] == "0.0.0.0" and int(config["KAFKA_TOPIC_PARTITIONS"]) >= 1
    secret = by_kind("Secret")["postsales-secrets"]["stringData"]
    databases = {f"{s.upper()}_DATABASE_URL" for s in SERVICES}
    assert set(secret) == {"POSTSALES_API_KEYS", "CONSOLE_SESSION_KEY"} | databases
    assert all("REPLACE" in value for value in secret.values())
    assert not set(secret) & set(config)


def test_k8s_readme_explains_scaling() -> None:
    text = (K8S / "README.md").read_text()
    assert "partition count bounds consumer parallelism" in text
    assert "FOR UPDATE SKIP LOCKED" in text


# --- the console (no database, no migration) ------------------------------------------------------

def test_compose_runs_the_console_after_the_four_services_with_its_session_key(compose: dict[str, Any]) -> None:
    console = compose["services"]["console"]
    port = default_port("console")
    assert console["command"] == ["services.console"] and console["ports"] == [f"{port}:{port}"]
    env = console["environment"]
    assert env["PORT"] == str(port) and "DATABASE_URL" not in env and "migrate-console" not in compose["services"]
    assert env["CONSOLE_SESSION_KEY"].startswith("${CONSOLE_SESSION_KEY:?")
    assert env["POSTSALES_API_KEYS"].startswith("${POSTSALES_API_KEYS:?")
    for name in SERVICES:
        assert env[f"CONSOLE_{name.upper()}_URL"] == f"http://{name}:{default_port(name)}"
        assert console["depends_on"][name] == {"condition": "service_healthy"}
    assert "/healthz" in " ".join(console["healthcheck"]["test"])


def test_the_console_deployment_is_hardened_and_reaches_the_services_by_name() -> None:
    deployment = by_kind("Deployment")["console"]
    c = _container(deployment)
    assert c["args"] == ["services.console"]
    port = default_port("console")
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": port}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PORT"] == str(port) and env["CONSOLE_COOKIE_SECURE"] == "true"
    for name in SERVICES:
        assert env[f"CONSOLE_{name.upper()}_URL"] == f"http://{name}:{default_port(name)}"
    assert _secret_refs(c) == {"POSTSALES_API_KEYS": "POSTSALES_API_KEYS", "CONSOLE_SESSION_KEY": "CONSOLE_SESSION_KEY"}
    assert set(_secret_refs(c).values()) <= set(by_kind("Secret")["postsales-secrets"]["stringData"])
    # An upstream outage degrades pages; it must not take the console out of the Service.
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    _assert_hardened(deployment, c)
    service = by_kind("Service")["console"]
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = by_kind("PodDisruptionBudget")["console"]
    for chosen in (service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"]):
        assert chosen.items() <= pod_labels.items()
    assert "console-migrate" not in by_kind("Job")
