"""bin/local-secret: the secrets `make run` and `make up` make when none is
set, kept outside the repository, the same at every start."""

import base64
import pathlib
import subprocess

import pytest

from shared.storage.sealing import WEBHOOK_SETTING, parse_keys

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


ROOT = pathlib.Path(__file__).resolve().parent.parent


def local_secret(name, state):
    return subprocess.run(
        [str(ROOT / "bin" / "local-secret"), name],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(state)},
        timeout=30,
    )


@pytest.mark.parametrize(
    "name, size", [("data-encryption-key", 32), ("session-secret", 48), ("webhook-secret-key", 32)]
)
def test_a_local_secret_is_made_once_kept_private_and_said_where(tmp_path, name, size):
    made = local_secret(name, tmp_path)
    kept = tmp_path / "referral-network" / name
    assert made.returncode == 0 and str(kept) in made.stderr
    assert len(base64.b64decode(made.stdout)) == size
    assert kept.read_text() == made.stdout and kept.stat().st_mode & 0o077 == 0
    again = local_secret(name, tmp_path)
    assert again.stdout == made.stdout and str(kept) in again.stderr


def test_the_local_data_key_is_one_the_referrals_service_takes(tmp_path):
    assert len(parse_keys(local_secret("data-encryption-key", tmp_path).stdout)) == 1


def test_the_local_webhook_key_is_one_the_notifications_service_takes(tmp_path):
    assert len(parse_keys(local_secret("webhook-secret-key", tmp_path).stdout, WEBHOOK_SETTING)) == 1


def test_an_unknown_secret_is_refused(tmp_path):
    refused = local_secret("webhook-secret", tmp_path)
    assert refused.returncode == 2 and "usage" in refused.stderr
