"""The README's webhook receiver works as it says: a signed delivery is
taken, a forged one refused, a late one (lower version) skipped."""

import datetime
import json
import pathlib
import re
import uuid

import pytest
from standardwebhooks import Webhook

pytestmark = pytest.mark.rules  # no server: `make fast` runs these

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def receiver():
    code = re.search(r"A receiver in\s+Python.*?```python\n(.*?)```", README.read_text(), re.S)[1]
    namespace = {"__name__": "readme_receiver"}  # Flask(__name__) wants a module name
    exec(code.replace('"whsec_..."', repr(SECRET)), namespace)  # the README's own code
    return namespace


def delivery(version, secret=SECRET, referral_id="0f7c0d1e-5b7a-4d55-9a2e-6d0c2b9f1a10"):
    body = json.dumps(
        {
            "type": "referral.accepted",
            "timestamp": "2026-11-29T10:00:00+00:00",
            "data": {"referral_id": referral_id, "version": version},
        }
    )
    event_id, now = str(uuid.uuid4()), datetime.datetime.now(datetime.UTC)
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
    }
    return {"data": body, "headers": headers, "content_type": "application/json"}


def test_the_readme_receiver_checks_signatures_and_keeps_the_newest_version():
    namespace = receiver()
    client = namespace["app"].test_client()
    assert client.post("/referral-hooks", **delivery(2)).status_code == 204
    assert client.post("/referral-hooks", **delivery(1)).status_code == 204  # late: taken, skipped
    assert namespace["seen"] == {"0f7c0d1e-5b7a-4d55-9a2e-6d0c2b9f1a10": 2}
    forged = delivery(3, secret="whsec_" + "QUJD" * 8)
    assert client.post("/referral-hooks", **forged).status_code == 400
    assert namespace["seen"]["0f7c0d1e-5b7a-4d55-9a2e-6d0c2b9f1a10"] == 2
