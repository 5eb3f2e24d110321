"""docker-compose.yml is valid, and its processes run `make run`'s commands."""
import os
import pathlib
import shlex
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def procfile():
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


@pytest.fixture(scope="module")
def compose():
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (apt-get install docker-compose; .ci/run does)")
    checked = subprocess.run(["docker-compose", "config"], cwd=ROOT, capture_output=True, text=True,
                             env=dict(os.environ, SESSION_SECRET="compose-test-secret"))
    assert checked.returncode == 0, checked.stderr
    return yaml.safe_load(checked.stdout)


def test_compose_wants_a_session_secret(compose):
    """The coordinator pages sign cookies with it: none means no network."""
    environment = {key: value for key, value in os.environ.items() if key != "SESSION_SECRET"}
    refused = subprocess.run(["docker-compose", "config"], cwd=ROOT, capture_output=True, text=True,
                             env=environment)
    assert refused.returncode != 0 and "SESSION_SECRET" in refused.stderr
    assert compose["services"]["gateway"]["environment"]["SESSION_SECRET"] == "compose-test-secret"


def as_words(command):
    return command if isinstance(command, list) else shlex.split(command)


def test_every_process_of_make_run_runs_under_compose_with_the_same_command(compose):
    for name, command in procfile().items():
        assert as_words(compose["services"][name]["command"]) == shlex.split(command), name


def test_compose_runs_the_preflight_that_make_run_runs(compose):
    run_script = (ROOT / "bin" / "run").read_text()
    assert "python -m shared.preflight" in run_script
    assert as_words(compose["services"]["migrate"]["command"]) == ["python", "-m", "shared.preflight"]


def test_the_infrastructure_is_there_with_health_checks_and_restarts(compose):
    services = compose["services"]
    assert "management" in services["rabbitmq"]["image"]
    assert "mailpit" in services["mailpit"]["image"]
    for name in ("rabbitmq", "postgres", "redis", "mailpit", *procfile()):
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["agencies"]["environment"]["SMTP_HOST"] == "mailpit"
    assert services["gateway"]["environment"]["RATE_LIMIT_STORAGE_URI"] == "redis://redis:6379"
