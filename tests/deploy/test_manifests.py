"""The deployment files in deploy/ are valid for the platforms they target. They cannot run
here (no cluster, no Docker daemon): Kubernetes' own schemas check deploy/k8s/, haproxy itself
checks its compose config, and a schema and cross-checks written here check deploy/compose.yml
and the Dockerfile against each other and the project."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate import validate
from kubernetes_validate.utils import ValidationError

from deploy.cluster import cluster_endpoints, compose_haproxy_config
from tests.conftest import PROJECT

KUBERNETES_VERSION = "1.28.0"
MANIFESTS = sorted((PROJECT / "deploy" / "k8s").glob("*.yaml"))
COMPOSE_FILE = PROJECT / "deploy" / "compose.yml"
SECRET_NAMES = re.compile(r"PASSWORD|TOKEN|SECRET|KEY", re.IGNORECASE)


def resources() -> list[dict[str, Any]]:
    return [r for path in MANIFESTS for r in yaml.safe_load_all(path.read_text(encoding="utf-8")) if r]


def resource(kind: str, name: str) -> dict[str, Any]:
    return next(r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name)


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", (PROJECT / "Dockerfile").read_text(encoding="utf-8"))
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_kubernetes_manifests_match_the_schemas(manifest: Path) -> None:
    found = [r for r in yaml.safe_load_all(manifest.read_text(encoding="utf-8")) if r]
    assert found
    for item in found:
        validate(item, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    job = yaml.safe_load_all((PROJECT / "deploy" / "k8s" / "generator-training.yaml").read_text(encoding="utf-8"))
    broken = [r for r in job if r["kind"] == "Job"][0]
    broken["spec"]["completions"] = "two"
    with pytest.raises(ValidationError):
        validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_training_job_runs_the_distributed_trainer() -> None:
    job = resource("Job", "kefu-generator-training")
    container = containers(job)[0]
    assert container["command"] == ["torchrun"]
    assert {"generator", "train", "--rdzv-backend=c10d"} <= set(container["args"])
    assert job["spec"]["completions"] == job["spec"]["parallelism"]


def test_bot_replicas_are_probed_on_root_and_run_the_images_command() -> None:
    bot = resource("Deployment", "kefu-bot")
    assert bot["spec"]["replicas"] >= 2
    container = containers(bot)[0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "http"}
    assert {"name": "http", "containerPort": 5005} in container["ports"]
    command = next(json.loads(value) for kind, value in dockerfile_instructions() if kind == "CMD")
    assert container["args"] == command


def test_every_service_reaches_pods_and_the_bot_reaches_its_stores() -> None:
    for service in (r for r in resources() if r["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        pods = [r for r in resources() if "template" in r["spec"]
                and selector <= r["spec"]["template"]["metadata"]["labels"].items()]
        assert pods, f"Service {service['metadata']['name']} selects no pods"
        ports = {key for pod in pods for c in containers(pod) for p in c.get("ports", [])
                 for key in (p.get("name"), p["containerPort"])}
        assert {p.get("targetPort", p["port"]) for p in service["spec"]["ports"]} <= ports
    env = {e["name"]: e for e in containers(resource("Deployment", "kefu-bot"))[0]["env"]}
    assert "@kefu-redis:6379/" in env["REDIS_URL"]["value"]
    assert env["KEFU_ACTIONS_URL"]["value"].startswith("http://kefu-actions:5055/")


def test_redis_keeps_an_append_only_file_on_its_own_volume() -> None:
    redis = resource("StatefulSet", "kefu-redis")
    container = containers(redis)[0]
    assert "--appendonly yes" in " ".join(container["command"]) and "--dir /data" in " ".join(container["command"])
    claims = {claim["metadata"]["name"] for claim in redis["spec"]["volumeClaimTemplates"]}
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"] and "data" in claims


def test_no_secret_value_is_committed() -> None:
    assert not [r for r in resources() if r["kind"] == "Secret"]
    for workload in (r for r in resources() if "template" in r["spec"]):
        for container in containers(workload):
            for variable in container.get("env", []):
                if SECRET_NAMES.search(variable["name"]):
                    assert "secretKeyRef" in variable["valueFrom"], variable
    for service in compose()["services"].values():
        for name, value in service.get("environment", {}).items():
            if SECRET_NAMES.search(name) or "@" in str(value):
                assert "${" in str(value), f"compose.yml: {name} must come from the environment"


def test_bot_and_action_servers_get_the_same_optional_encryption_key() -> None:
    # The bot seals conversations and the action servers seal feedback and hand-offs: one key set.
    sources = []
    for name in ("kefu-bot", "kefu-actions"):
        env = {e["name"]: e for e in containers(resource("Deployment", name))[0]["env"]}
        sources.append(env["KEFU_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"])
    assert sources[0] == sources[1] and sources[0]["optional"] is True
    services = compose()["services"]
    assert services["bot"]["environment"]["KEFU_ENCRYPTION_KEY"] == "${KEFU_ENCRYPTION_KEY:-}"
    assert services["actions"]["environment"]["KEFU_ENCRYPTION_KEY"] == "${KEFU_ENCRYPTION_KEY:-}"


# The compose file keys Kefu uses; an unknown key (a typo) is an error, as `docker compose config` says.
HEALTHCHECK = {"type": "object", "additionalProperties": False, "required": ["test"],
               "properties": {"test": {"type": "array", "items": {"type": "string"}},
                              **{key: {"type": ["string", "integer"]}
                                 for key in ("interval", "timeout", "retries", "start_period")}}}
COMPOSE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["services"],
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "services": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False,
            "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
            "properties": {
                "image": {"type": "string"},
                "build": {"type": "object", "additionalProperties": False, "required": ["context"],
                          "properties": {"context": {"type": "string"}, "dockerfile": {"type": "string"}}},
                "command": {"type": "array", "items": {"type": "string"}},
                "environment": {"type": "object", "additionalProperties": {"type": "string"}},
                "volumes": {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:/[^:]*(:ro)?$"}},
                "ports": {"type": "array", "items": {"type": "string", "pattern": r"^127\.0\.0\.1:\d+:\d+$"}},
                "expose": {"type": "array", "items": {"type": "string", "pattern": r"^\d+$"}},
                "healthcheck": HEALTHCHECK,
                "depends_on": {"oneOf": [
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "object", "additionalProperties": {
                        "type": "object", "additionalProperties": False, "properties": {"condition": {
                            "enum": ["service_started", "service_healthy", "service_completed_successfully"]}}}}]},
                "deploy": {"type": "object", "additionalProperties": False,
                           "properties": {"replicas": {"type": "integer", "minimum": 1}}},
                "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
            }}},
    },
}


def test_the_compose_file_matches_its_schema_and_the_schema_catches_typos() -> None:
    jsonschema.validate(compose(), COMPOSE_SCHEMA)
    broken = compose()
    broken["services"]["bot"]["enviroment"] = broken["services"]["bot"].pop("environment")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, COMPOSE_SCHEMA)


def test_the_compose_services_fit_together() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", [])) <= set(services), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).is_file(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in compose()["volumes"], f"{name} mounts undeclared volume {source}"
        if "build" in service:
            assert (COMPOSE_FILE.parent / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    assert services["bot"]["deploy"]["replicas"] >= 2
    assert "/data" in " ".join(services["redis"]["volumes"])
    # The bot reaches the action servers through haproxy, as `make cluster` does.
    assert services["bot"]["environment"]["KEFU_ACTIONS_URL"] == "http://haproxy:5054/webhook"


def test_the_compose_haproxy_config_is_the_templates_and_haproxy_accepts_it(tmp_path: Path) -> None:
    committed = (PROJECT / "deploy" / "haproxy.compose.cfg").read_text(encoding="utf-8")
    assert committed == compose_haproxy_config(), (
        "deploy/haproxy.compose.cfg is out of date: run "
        "python deploy/cluster.py haproxy-config > deploy/haproxy.compose.cfg")
    services = compose()["services"]
    for name, port in (("bot", "5005"), ("actions", "5055")):
        assert f" {name}:{port} " in committed and port in services[name]["expose"]
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if not haproxy:
        pytest.fail("haproxy is not installed (Debian: apt-get install haproxy; make test does it)")
    checked = subprocess.run([haproxy, "-c", "-f", str(PROJECT / "deploy" / "haproxy.compose.cfg")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_file_the_dockerfile_copies_is_in_the_build_context() -> None:
    ignored = [line.strip() for line in (PROJECT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for kind, value in dockerfile_instructions():
        if kind != "COPY":
            continue
        for source in value.split()[:-1]:
            if source.startswith("${"):
                continue  # the model, checked by `make train` before a build
            assert (PROJECT / source).exists(), f"Dockerfile copies {source}, which does not exist"
            assert source.rstrip("/").split("/")[0] not in ignored, f".dockerignore leaves out {source}"


def test_a_container_finds_the_action_server_named_in_its_environment(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(cluster_endpoints("${KEFU_ACTIONS_URL}", "/app/.kefu/spool"))
    monkeypatch.setenv("KEFU_ACTIONS_URL", "http://kefu-actions:5055/webhook")
    assert read_endpoint_config(str(endpoints), "action_endpoint").url == "http://kefu-actions:5055/webhook"
    project = yaml.safe_load((PROJECT / "endpoints.yml").read_text())
    generated = yaml.safe_load(endpoints.read_text())
    assert generated["lock_store"] == project["lock_store"]
    assert {**generated["tracker_store"], "spool_dir": None} == {**project["tracker_store"], "spool_dir": None}
