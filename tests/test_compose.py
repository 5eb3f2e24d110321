"""docker-compose.yml is valid, and its processes run `make run`'s commands."""
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
    checked = subprocess.run(["docker-compose", "config"], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    return yaml.safe_load(checked.stdout)


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
    for name in ("rabbitmq", "postgres", "mailpit", *procfile()):
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["agencies"]["environment"]["SMTP_HOST"] == "mailpit"
