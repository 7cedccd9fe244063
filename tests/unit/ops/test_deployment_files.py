"""The deployment files (Dockerfile, deploy/): no container runtime runs here, so they are
checked by yamllint and by reading what an operator relies on: a non-root image with a
read-only root file system and health checks, probes on /healthz and /readyz, resource
requests, a disruption budget, several instances with the shared replay store."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from iris_prompt.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kubernetes(kind: str) -> dict[str, Any]:
    found = [
        doc
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for doc in documents(path)
        if doc["kind"] == kind
    ]
    assert len(found) == 1, kind
    return found[0]


def test_yamllint_passes_strictly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(DEPLOY / ".yamllint.yaml"),
         str(DEPLOY)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_non_root_and_health_checked() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[1].startswith("FROM python:3.11")
    assert any(line.startswith("COPY --from=build ") for line in lines)
    (user,) = [line for line in lines if line.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "/healthz" in " ".join(lines)
    assert "STOPSIGNAL SIGTERM" in lines


def test_kubernetes_probes_resources_security_and_disruption_budget() -> None:
    deployment = kubernetes("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    config = kubernetes("ConfigMap")["data"]
    grace = float(config["IRIS_SHUTDOWN_GRACE_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] > grace + 5  # the preStop pause
    budget = kubernetes("PodDisruptionBudget")["spec"]
    assert 1 <= budget["minAvailable"] < deployment["spec"]["replicas"]
    assert int(config["IRIS_INSTANCES"]) == deployment["spec"]["replicas"]
    # The settings of the manifests start (with Redis, which several instances need).
    values = {
        k.removeprefix("IRIS_").lower(): v for k, v in config.items() if k.startswith("IRIS_")
    }
    Settings(**values, redis_url="redis://redis:6379/0", local_mode=False)
    job = kubernetes("Job")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["iris-prompt", "store", "upgrade"]


def test_the_compose_file_runs_several_instances_with_postgresql_and_redis() -> None:
    (compose,) = documents(DEPLOY / "compose.yaml")
    services = compose["services"]
    instances = [s for name, s in services.items() if name.startswith("iris-")]
    assert len(instances) >= 2
    for service in instances:
        env = service["environment"]
        assert env["IRIS_REDIS_URL"].startswith("redis://")
        assert int(env["IRIS_INSTANCES"]) == len(instances)
        assert service["read_only"] is True
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "--appendonly" in services["redis"]["command"]
    assert {"postgres", "redis", "proxy", "migrate"} <= set(services)
