"""The deployment files in deploy/ are valid for the platforms they target. They cannot run
here (no cluster), so a validator checks them against Kubernetes' own schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes_validate import validate
from kubernetes_validate.utils import ValidationError

from tests.conftest import PROJECT

KUBERNETES_VERSION = "1.28.0"
MANIFESTS = sorted((PROJECT / "deploy" / "k8s").glob("*.yaml"))


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_kubernetes_manifests_match_the_schemas(manifest: Path) -> None:
    resources = [r for r in yaml.safe_load_all(manifest.read_text(encoding="utf-8")) if r]
    assert resources
    for resource in resources:
        validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    job = yaml.safe_load_all((PROJECT / "deploy" / "k8s" / "generator-training.yaml").read_text(encoding="utf-8"))
    broken = [r for r in job if r["kind"] == "Job"][0]
    broken["spec"]["completions"] = "two"
    with pytest.raises(ValidationError):
        validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_training_job_runs_the_distributed_trainer() -> None:
    resources = list(yaml.safe_load_all((PROJECT / "deploy" / "k8s" / "generator-training.yaml").read_text()))
    job = next(r for r in resources if r["kind"] == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["torchrun"]
    assert {"generator", "train", "--rdzv-backend=c10d"} <= set(container["args"])
    assert job["spec"]["completions"] == job["spec"]["parallelism"]
