"""deploy/k8s/ is valid Kubernetes, offline, and runs what `make run` runs:
each container the Procfile's command, each probe docker compose's health
check, each secret only where it is needed and never a secret's value."""

import ast
import copy
import pathlib
import re
import shlex
import shutil
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from shared import config

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
BASE, OVERLAY = K8S / "base", K8S / "overlays" / "example"
KUBERNETES_VERSION = "1.31"  # the oldest the manifests are meant for; strict: no unknown field passes
KUSTOMIZATION = "kustomization.yaml"

# RabbitmqCluster is the RabbitMQ Cluster Operator's kind: kubernetes-validate
# knows only Kubernetes' own. Its fields, as far as these manifests use them,
# from the operator's CRD (rabbitmq/cluster-operator,
# config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml, v1beta1): a field
# misspelt or put at the wrong level fails here as it would at `kubectl apply`.
QUANTITY = {"type": ["string", "integer"]}
RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        part: {"type": "object", "additionalProperties": QUANTITY}
        for part in ("requests", "limits", "claims")
    },
}
RABBITMQ_CLUSTER = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "rabbitmq.com/v1beta1"},
        "kind": {"const": "RabbitmqCluster"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "replicas": {"type": "integer", "minimum": 0},
                "image": {"type": "string"},
                "resources": RESOURCES,
                "persistence": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "storage": QUANTITY,
                        "storageClassName": {"type": "string"},
                        "emptyDir": {"type": "object"},
                    },
                },
                "rabbitmq": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        key: {"type": "string"}
                        for key in ("additionalConfig", "advancedConfig", "envConfig", "erlangInetConfig")
                    }
                    | {"additionalPlugins": {"type": "array", "items": {"type": "string"}}},
                },
                "service": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string"},
                        "annotations": {"type": "object"},
                        "labels": {"type": "object"},
                        "ipFamilyPolicy": {"type": "string"},
                    },
                },
                **{
                    key: {}
                    for key in (
                        "affinity",
                        "autoEnableAllFeatureFlags",
                        "delayStartSeconds",
                        "imagePullSecrets",
                        "override",
                        "secretBackend",
                        "skipPostDeploySteps",
                        "tls",
                        "tolerations",
                    )
                },
                "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
            },
        },
    },
}

# Which container needs which secret setting (as docker compose gives them).
SECRETS_NEEDED = {
    "agencies": {"AMQP_URI", "AGENCIES_DATABASE_URL", "BOOTSTRAP_ADMIN_KEY"},
    "referrals": {"AMQP_URI", "REFERRALS_DATABASE_URL", "DATA_ENCRYPTION_KEYS"},
    "notifications": {
        "AMQP_URI",
        "NOTIFICATIONS_DATABASE_URL",
        "WEBHOOK_SECRET_KEYS",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
    },
    "gateway": {"AMQP_URI", "SESSION_SECRET"},
    "migrate": {
        "AMQP_URI",
        "AGENCIES_DATABASE_URL",
        "REFERRALS_DATABASE_URL",
        "NOTIFICATIONS_DATABASE_URL",
        "DATA_ENCRYPTION_KEYS",
    },
}
SECRET_SETTINGS = set().union(*SECRETS_NEEDED.values())
# Settings read outside shared/config.py's DEFAULTS: gunicorn.conf.py's, and
# the metrics port every service process serves (docs/operations.md, "Metrics").
OTHER_SETTINGS = {"GATEWAY_WORKERS", "GATEWAY_THREADS", "METRICS_PORT"}
A_PASSWORD_IN_A_URL = re.compile(r"://[^/\s@:]+:[^/\s@]+@")


def manifest_files():
    return sorted(path for path in K8S.rglob("*.yaml") if path.name != KUSTOMIZATION)


def documents(path):
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def base_resources():
    return [document for path in manifest_files() if BASE in path.parents for document in documents(path)]


def of_kind(kind, resources=None):
    return {r["metadata"]["name"]: r for r in (resources or base_resources()) if r["kind"] == kind}


def pod_templates(resources=None):
    workloads = {**of_kind("Deployment", resources), **of_kind("Job", resources)}
    return {name: workload["spec"]["template"]["spec"] for name, workload in workloads.items()}


def containers(resources=None):
    return {
        container["name"]: container
        for pod in pod_templates(resources).values()
        for container in pod["containers"]
    }


def procfile():
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {
        name: shlex.split(command)
        for name, command in (line.split(": ", 1) for line in lines if line.strip())
    }


def validate(resource):
    if resource["kind"] == "RabbitmqCluster":
        jsonschema.validate(resource, RABBITMQ_CLUSTER)
    else:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: str(path.relative_to(K8S)))
def test_every_manifest_is_valid_kubernetes(path):
    """Base resources whole; the overlay's patches are checked once built
    (below), as they are partial resources on their own."""
    for resource in documents(path):
        if path.parent == OVERLAY and resource["metadata"]["name"] in {
            r["metadata"]["name"] for r in base_resources() if r["kind"] == resource["kind"]
        }:
            continue  # a patch
        validate(resource)


def test_the_validators_refuse_a_misspelt_field():
    """The two checks above can fail: a field Kubernetes or the operator
    does not know is refused."""
    deployment = copy.deepcopy(of_kind("Deployment")["gateway"])
    deployment["spec"]["replcas"] = 2
    with pytest.raises(ValidationError):
        validate(deployment)
    cluster = copy.deepcopy(of_kind("RabbitmqCluster")["rabbitmq"])
    cluster["spec"]["rabbitmq"]["additionalPlugin"] = ["rabbitmq_shovel"]
    with pytest.raises(jsonschema.ValidationError):
        validate(cluster)


def test_every_file_a_kustomization_names_is_there():
    """Checked without kustomize: each resource and patch the base and the
    overlay name exists, and every base manifest is named."""
    for folder in (BASE, OVERLAY):
        kustomization = yaml.safe_load((folder / KUSTOMIZATION).read_text())
        named = kustomization.get("resources", []) + [
            patch["path"] for patch in kustomization.get("patches", [])
        ]
        for name in named:
            assert (folder / name).exists(), f"{folder.name}/{KUSTOMIZATION} names {name}, which is missing"
        if folder == BASE:
            assert set(named) == {path.name for path in BASE.glob("*.yaml")} - {KUSTOMIZATION}
    overlay = yaml.safe_load((OVERLAY / KUSTOMIZATION).read_text())
    deployments = of_kind("Deployment")
    assert {replicas["name"] for replicas in overlay["replicas"]} <= set(deployments)
    images = {container["image"].split(":")[0] for container in containers().values()}
    assert {image["name"] for image in overlay["images"]} <= images


@pytest.fixture(scope="module")
def built_overlay():
    kustomize = shutil.which("kubectl") or shutil.which("kustomize")
    if not kustomize:
        pytest.skip("neither kubectl nor kustomize is installed: the overlay is checked file by file only")
    built = subprocess.run(
        [kustomize, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    return [document for document in yaml.safe_load_all(built.stdout) if document]


def test_the_overlay_builds_into_valid_kubernetes_with_its_own_names(built_overlay):
    for resource in built_overlay:
        validate(resource)
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "referral-network"
    settings = of_kind("ConfigMap", built_overlay)["referral-network-settings"]["data"]
    assert settings["PUBLIC_URL"] == "https://referrals.example.org"
    assert of_kind("Service", built_overlay)["postgres"]["spec"]["externalName"] == "db.example.org"
    assert of_kind("Deployment", built_overlay)["gateway"]["spec"]["replicas"] == 3
    assert {c["image"] for c in containers(built_overlay).values() if c["name"] != "redis"} == {
        "registry.example.org/returnee-referral-network:1.0.0"
    }
    assert not [r for r in built_overlay if ".invalid" in yaml.safe_dump(r)], "a placeholder left unset"
    selector = of_kind("Service", built_overlay)["service-metrics"]["spec"]["selector"]
    for name, deployment in of_kind("Deployment", built_overlay).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert (selector.items() <= labels.items()) == (name in ("agencies", "referrals", "notifications")), (
            name
        )


def test_every_process_of_make_run_runs_with_the_same_command():
    running = containers()
    for name, command in procfile().items():
        assert running[name]["command"] == command, name
    assert running["migrate"]["command"] == ["python", "-m", "shared.commands.preflight"]
    assert "python -m shared.commands.preflight" in (ROOT / "bin" / "run").read_text()


def test_probes_are_docker_composes_health_checks_and_each_process_its_own_liveness():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    running = containers()
    for name in ("agencies", "referrals", "notifications"):
        health_check = compose[name]["healthcheck"]["test"]
        assert health_check[0] == "CMD"
        assert running[name]["readinessProbe"]["exec"]["command"] == health_check[1:], name
        # the process's own answer (shared.plumbing.metrics.serve), not a ping any replica may answer
        liveness = running[name]["livenessProbe"]["httpGet"]
        assert liveness["path"] == "/healthz" and liveness["port"] == "metrics", name
        [port] = running[name]["ports"]
        assert (port["name"], port["containerPort"]) == ("metrics", 9100), name
        assert {"name": "METRICS_PORT", "value": "9100"} in running[name]["env"], name
    assert "/healthz" in " ".join(compose["gateway"]["healthcheck"]["test"])
    assert running["gateway"]["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert running["gateway"]["readinessProbe"]["httpGet"]["path"] == "/readyz"


def secret_settings_of(container):
    assert "envFrom" not in container or all("secretRef" not in source for source in container["envFrom"]), (
        "secrets are given one by one, by name"
    )
    return {
        variable["name"]
        for variable in container.get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }


def test_each_secret_is_given_only_to_the_containers_that_need_it():
    given = {name: secret_settings_of(container) for name, container in containers().items()}
    given.pop("redis")
    assert given == SECRETS_NEEDED
    assert {name for name, settings in given.items() if "DATA_ENCRYPTION_KEYS" in settings} == {
        "referrals",
        "migrate",
    }
    assert {name for name, settings in given.items() if "WEBHOOK_SECRET_KEYS" in settings} == {
        "notifications"
    }


def test_no_secret_value_is_in_any_manifest():
    for path in [*manifest_files(), BASE / KUSTOMIZATION, OVERLAY / KUSTOMIZATION]:
        text = path.read_text()
        assert not A_PASSWORD_IN_A_URL.search(text), path
        assert "secretGenerator" not in text, path
        for resource in documents(path):
            assert resource["kind"] != "Secret", path
            if resource["kind"] == "ConfigMap":
                assert not set(resource["data"]) & SECRET_SETTINGS, path
    for name, container in containers().items():
        for variable in container.get("env", []):
            assert variable["name"] not in SECRET_SETTINGS or "value" not in variable, (
                name,
                variable["name"],
            )


def test_settings_are_the_networks_own():
    known = set(config.DEFAULTS) | OTHER_SETTINGS
    settings = of_kind("ConfigMap")["referral-network-settings"]["data"]
    assert set(settings) <= known, set(settings) - known
    for name, container in containers().items():
        if name != "redis":
            assert {variable["name"] for variable in container.get("env", [])} <= known, name


def test_replicas_disruption_budgets_and_resources():
    deployments = of_kind("Deployment")
    budgets = of_kind("PodDisruptionBudget")
    for name in procfile():
        assert deployments[name]["spec"]["replicas"] == 2, name
        assert budgets[name]["spec"]["minAvailable"] == 1, name
        assert budgets[name]["spec"]["selector"] == deployments[name]["spec"]["selector"], name
    for name, container in containers().items():
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], name
        assert resources["limits"]["memory"], name
    assert of_kind("RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3
    assert of_kind("Service")["postgres"]["spec"]["type"] == "ExternalName"


def test_a_stopping_process_has_longer_than_its_longest_wait():
    """Stopped, a process finishes what it is doing; nothing it does waits
    longer than these timeouts (gunicorn's graceful_timeout for the gateway,
    plus the preStop pause that lets the Service forget the replica)."""
    settings = config.load(environ=of_kind("ConfigMap")["referral-network-settings"]["data"])
    longest = max(
        float(settings[key])
        for key in ("RPC_TIMEOUT_SECONDS", "NOTIFICATION_SEND_TIMEOUT_SECONDS", "WEBHOOK_TIMEOUT_SECONDS")
    )
    gunicorn = {
        node.targets[0].id: node.value.value
        for node in ast.parse((ROOT / "gateway" / "gunicorn.conf.py").read_text()).body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
    }
    templates = pod_templates()
    for name in procfile():
        grace = templates[name]["terminationGracePeriodSeconds"]
        assert grace > longest, name
    gateway = containers()["gateway"]
    pause = float(gateway["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert templates["gateway"]["terminationGracePeriodSeconds"] > pause + max(
        gunicorn["graceful_timeout"], longest
    )


def test_the_first_step_of_an_upgrade_applies_the_migration_and_none_of_the_network():
    """docs/operations.md applies `component notin (service,gateway)` first,
    waits for the migration Job, then applies the rest."""

    def first_step(resource):
        return resource["metadata"].get("labels", {}).get("app.kubernetes.io/component") not in (
            "service",
            "gateway",
        )

    resources = base_resources()
    applied = {(r["kind"], r["metadata"]["name"]) for r in resources if first_step(r)}
    assert {
        ("Job", "migrate"),
        ("ConfigMap", "referral-network-settings"),
        ("RabbitmqCluster", "rabbitmq"),
        ("Deployment", "redis"),
        ("Service", "postgres"),
    } <= applied
    assert not applied & {("Deployment", name) for name in procfile()}
    assert "component notin (service,gateway)" in (ROOT / "docs" / "operations.md").read_text()


def test_metrics_are_scraped_where_they_are_served():
    metrics = of_kind("Service")["service-metrics"]
    assert metrics["spec"]["clusterIP"] == "None"
    for name, deployment in of_kind("Deployment").items():
        if name == "redis":
            continue
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        if name == "gateway":
            assert annotations["prometheus.io/port"] == "8000"
            continue
        assert annotations["prometheus.io/port"] == "9100"
        container = template["spec"]["containers"][0]
        assert {"name": "METRICS_PORT", "value": "9100"} in container["env"]
        assert {"name": "metrics", "containerPort": 9100} in container["ports"]
        assert (
            metrics["spec"]["selector"]["app.kubernetes.io/component"]
            == template["metadata"]["labels"]["app.kubernetes.io/component"]
        )
