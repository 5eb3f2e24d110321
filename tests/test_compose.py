"""docker-compose.yml is valid, and its processes run `make run`'s commands."""

import json
import os
import pathlib
import shlex
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECRETS = {
    "SESSION_SECRET": "compose-test-secret",
    "DATA_ENCRYPTION_KEYS": "Y29tcG9zZS10ZXN0LWtleS1vZi0zMi1ieXRlcyEhISE=",
    "WEBHOOK_SECRET_KEYS": "d2ViaG9vay10ZXN0LWtleS1vZi0zMi1ieXRlcyEhISE=",
}


def procfile():
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


@pytest.fixture(scope="module")
def compose():
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (apt-get install docker-compose; .ci/run does)")
    checked = subprocess.run(
        ["docker-compose", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, **SECRETS),
    )
    assert checked.returncode == 0, checked.stderr
    return yaml.safe_load(checked.stdout)


@pytest.mark.parametrize("setting", sorted(SECRETS))
def test_compose_wants_its_secrets(compose, setting):
    """The coordinator pages sign cookies with SESSION_SECRET, the referrals
    service seals returnees' data under DATA_ENCRYPTION_KEYS: without
    either, no network."""
    environment = {key: value for key, value in dict(os.environ, **SECRETS).items() if key != setting}
    refused = subprocess.run(
        ["docker-compose", "config"], cwd=ROOT, capture_output=True, text=True, env=environment
    )
    assert refused.returncode != 0 and setting in refused.stderr
    assert compose["services"]["gateway"]["environment"]["SESSION_SECRET"] == SECRETS["SESSION_SECRET"]


def test_only_the_referrals_service_and_its_migrations_hold_the_data_keys(compose):
    holders = {
        name
        for name, service in compose["services"].items()
        if "DATA_ENCRYPTION_KEYS" in (service.get("environment") or {})
    }
    assert holders == {"referrals", "migrate"}
    assert (
        compose["services"]["referrals"]["environment"]["DATA_ENCRYPTION_KEYS"]
        == SECRETS["DATA_ENCRYPTION_KEYS"]
    )


def test_only_the_notifications_service_holds_the_webhook_keys(compose):
    holders = {
        name
        for name, service in compose["services"].items()
        if "WEBHOOK_SECRET_KEYS" in (service.get("environment") or {})
    }
    assert holders == {"notifications"}


def as_words(command):
    return command if isinstance(command, list) else shlex.split(command)


def test_every_process_of_make_run_runs_under_compose_with_the_same_command(compose):
    for name, command in procfile().items():
        assert as_words(compose["services"][name]["command"]) == shlex.split(command), name


def test_compose_runs_the_preflight_that_make_run_runs(compose):
    run_script = (ROOT / "bin" / "run").read_text()
    assert "python -m shared.commands.preflight" in run_script
    assert as_words(compose["services"]["migrate"]["command"]) == [
        "python",
        "-m",
        "shared.commands.preflight",
    ]


def test_the_infrastructure_is_there_with_health_checks_and_restarts(compose):
    services = compose["services"]
    assert "management" in services["rabbitmq"]["image"]
    assert "mailpit" in services["mailpit"]["image"]
    for name in ("rabbitmq", "postgres", "redis", "mailpit", *procfile()):
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["agencies"]["environment"]["SMTP_HOST"] == "mailpit"
    assert services["gateway"]["environment"]["RATE_LIMIT_STORAGE_URI"] == "redis://redis:6379"


def mounts(service):
    """{path in the container: path here} of a service's volumes (either syntax of docker-compose config)."""
    found = {}
    for volume in service.get("volumes", ()):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        found[target] = pathlib.Path(source)
    return found


def test_prometheus_scrapes_every_replica_of_every_process_on_its_metrics_port(compose):
    services = compose["services"]
    scraped = yaml.safe_load(mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"].read_text())
    found = {}  # compose service -> the port Prometheus scrapes it on
    for job in scraped["scrape_configs"]:
        for discovery in job["dns_sd_configs"]:  # every replica, by the service's name in compose's DNS
            found.update(dict.fromkeys(discovery["names"], discovery["port"]))
    assert set(found) == set(procfile())
    for name, port in found.items():
        environment = services[name]["environment"]
        assert str(port) == (
            environment["GATEWAY_PORT"] if name == "gateway" else environment["METRICS_PORT"]
        ), name


def test_grafana_is_given_prometheus_and_the_dashboard_of_the_repository(compose):
    grafana = compose["services"]["grafana"]
    mounted = mounts(grafana)
    provisioning, dashboards = mounted["/etc/grafana/provisioning"], mounted["/var/lib/grafana/dashboards"]
    [source] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    [provider] = yaml.safe_load((provisioning / "dashboards" / "network.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert (
        dashboards / "network.json"
    ).is_file() and dashboards == ROOT / "deploy" / "grafana" / "dashboards"
    dashboard = json.loads(
        (dashboards / "network.json").read_text()
    )  # valid JSON; its queries: tests/e2e/test_metrics.py
    assert {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel.get("targets", ())
    } == {source["uid"]}
    assert (
        grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        == "/var/lib/grafana/dashboards/network.json"
    )


def test_every_service_can_be_scaled_and_the_gateway_grows_by_its_workers(compose):
    """`docker compose up --scale <service>=N`: compose names each replica
    itself (no container_name) and no service wants a host port, which two
    replicas would both want. The gateway keeps its one port and grows by
    its processes, GATEWAY_WORKERS, taken from the environment."""
    services = compose["services"]
    assert [name for name, service in services.items() if "container_name" in service] == []
    for name in procfile():
        published = [
            str(port["published"]) if isinstance(port, dict) else str(port).rpartition(":")[0]
            for port in services[name].get("ports", [])
        ]
        assert published == (["8000"] if name == "gateway" else []), name
    checked = subprocess.run(
        ["docker-compose", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, **SECRETS, GATEWAY_WORKERS="6"),
    )
    assert checked.returncode == 0, checked.stderr
    assert yaml.safe_load(checked.stdout)["services"]["gateway"]["environment"]["GATEWAY_WORKERS"] == "6"
