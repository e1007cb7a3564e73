"""The Kubernetes manifests in deploy/kubernetes: valid against Kubernetes' own schemas, and consistent.

Schemas come with ``kubernetes-validate`` (offline, strict: an unknown field is an error).
The cross-references are what a schema cannot see: selectors that find the pods, probes
and Service on the port the service listens on, a grace period longer than the server
may still need after SIGTERM, limits over requests and over what the settings can use.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.server import Timeouts
from service.settings import ENVIRONMENT, MIB, Settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes release still maintained when these were written, and the newest known.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())

# README, Performance: the parent process, an idle worker at most, and a request's peak in
# its worker as a multiple of its body.
PARENT_BYTES = 17e6
IDLE_WORKER_BYTES = 165e6
PEAK_PER_BODY = 3.3


def load(name: str) -> dict[str, Any]:
    """The one resource in a manifest file."""
    (document,) = yaml.safe_load_all((MANIFESTS / name).read_text())
    assert isinstance(document, dict)
    return document


def resources() -> list[tuple[str, dict[str, Any]]]:
    """Every resource of every manifest file, with its file name."""
    found = [
        (path.name, document)
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document is not None
    ]
    assert found, f"no manifests in {MANIFESTS}"
    return found


def quantity(text: str | int) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``768Mi``, ``1G``) as a number of units."""
    match = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(text))
    assert match, f"not a quantity: {text!r}"
    scale = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[match[2]]  # fmt: skip
    return float(match[1]) * scale


def deployment() -> dict[str, Any]:
    """The Deployment."""
    return load("deployment.yaml")


def container() -> dict[str, Any]:
    """The Deployment's fitserve container."""
    (only,) = deployment()["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def container_port(port: int | str) -> int:
    """A port of the container given by number or by name, as its number."""
    for entry in container()["ports"]:
        if port in (entry["containerPort"], entry.get("name")):
            return int(entry["containerPort"])
    raise AssertionError(f"the container has no port {port!r}")


def environment() -> dict[str, str]:
    """The container's plain environment variables (not those from Secrets)."""
    return {entry["name"]: entry["value"] for entry in container()["env"] if "value" in entry}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "resource"), resources(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_manifest_is_valid_against_the_kubernetes_schema(name: str, resource: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(containerPort=8000), "a field in the wrong place"),
        (lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds="90"), "a number as text"),
        (lambda d: d["spec"].pop("selector"), "a required field missing"),
    ],
    ids=["unknown-field", "wrong-type", "missing-required"],
)
def test_the_schema_check_catches_a_broken_deployment(change: Any, why: str) -> None:
    broken = copy.deepcopy(deployment())
    change(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_every_resource_kind_is_there() -> None:
    kinds = sorted(resource["kind"] for _, resource in resources())
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


def test_selectors_find_the_pods() -> None:
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment()["spec"]["selector"]["matchLabels"],
        "Service": load("service.yaml")["spec"]["selector"],
        "PodDisruptionBudget": load("pdb.yaml")["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector, kind
        assert selector.items() <= labels.items(), f"the {kind}'s selector {selector} misses the pod labels {labels}"


def test_the_autoscaler_scales_the_deployment_on_cpu() -> None:
    hpa = load("hpa.yaml")["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", deployment()["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert "cpu" in container()["resources"]["requests"], "CPU utilization is measured against the CPU request"
    # one pod may be disrupted while another serves
    assert hpa["minReplicas"] >= 2
    assert load("pdb.yaml")["spec"]["maxUnavailable"] < hpa["minReplicas"]


def test_probes_and_service_reach_the_port_the_service_listens_on() -> None:
    settings = Settings.from_env(environment())
    assert settings.host == "0.0.0.0"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        check = container()[probe]["httpGet"]
        assert check["path"] == "/health", probe
        assert container_port(check["port"]) == settings.port, probe
    service_port = load("service.yaml")["spec"]["ports"][0]
    assert container_port(service_port["targetPort"]) == settings.port


def test_environment_names_only_settings_that_exist() -> None:
    known = set(ENVIRONMENT.values())
    names = {entry["name"] for entry in container()["env"]}
    assert {name for name in names if name.startswith("FITSERVE_")} <= known
    # the worker count follows the node's CPUs unless given: given, and within the CPU limit
    workers = Settings.from_env(environment()).worker_count
    assert "FITSERVE_WORKERS" in names
    assert workers <= quantity(container()["resources"]["limits"]["cpu"])


def test_grace_period_outlasts_what_the_server_does_after_sigterm() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    pause = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    timeouts = Timeouts()
    assert pod["terminationGracePeriodSeconds"] > pause + timeouts.request + timeouts.drain


def test_limits_cover_requests_and_what_the_settings_can_use() -> None:
    resources = container()["resources"]
    for name in ("cpu", "memory"):
        assert quantity(resources["limits"][name]) >= quantity(resources["requests"][name]), name
    settings = Settings.from_env(environment())
    idle = PARENT_BYTES + settings.worker_count * IDLE_WORKER_BYTES
    one_large = PEAK_PER_BODY * settings.max_body_bytes
    assert quantity(resources["requests"]["memory"]) >= idle + one_large
    # every thread of every worker busy with a body at the limit
    assert quantity(resources["limits"]["memory"]) >= idle + settings.threads * one_large
    assert settings.max_body_bytes == 100 * MIB


def test_pod_runs_unprivileged_on_a_read_only_root() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    security = container()["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # the user the image was built with
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "deploy" / "Containerfile").read_text(), re.MULTILINE)
    assert user, "the Containerfile sets no numeric USER"
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (int(user[1]), int(user[2]))
    # the only writable place is /tmp, and the service is told to write there
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (mount,) = container()["volumeMounts"]
    assert mount["mountPath"] == "/tmp" and "emptyDir" in volumes[mount["name"]]
    assert environment()["TMPDIR"] == "/tmp"
