"""Text PostgreSQL cannot store (a NUL character, a lone surrogate) is valid
JSON: every string a partner can send, in a body or a query, is refused with
a 422 naming it, never a 500. The walk follows the OpenAPI document, so a
string field added later is tried too."""

import json

import pytest

from tests.gateway.conftest import ADMIN_KEY, bearer
from tests.support import data

UNSTORABLE = {"nul": "a\u0000b", "lone surrogate": "a\ud800b"}


def resolve(document, schema):
    while "$ref" in schema or "allOf" in schema:
        schema = (
            schema["allOf"][0]
            if "allOf" in schema
            else document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        )
    return schema


def free_text_paths(document, schema, prefix=""):
    """Paths ("returnee.given_name", "contacts.0.email", ...) of every string
    a partner writes in a body of `schema`: not read-only, not a fixed choice,
    not a uuid or date (those are refused by their form already)."""
    schema = resolve(document, schema)
    if schema.get("readOnly"):
        return
    if "properties" in schema:
        for name, field in schema["properties"].items():
            yield from free_text_paths(document, field, f"{prefix}.{name}" if prefix else name)
    elif schema.get("type") == "array":
        yield from free_text_paths(document, schema["items"], f"{prefix}.0")
    elif schema.get("type") == "string" and "enum" not in schema and "format" not in schema:
        yield prefix


def with_value(body, path, value):
    changed = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    place = changed
    for part in parents:
        place = place[int(part)] if isinstance(place, list) else place.setdefault(part, {})
    if isinstance(place, list):
        place[int(last)] = value
    else:
        place[last] = value
    return changed


@pytest.fixture
def world(client, new_agency):
    sender, sender_key = new_agency(name="Sender", contacts=[data.contact(phone="+994501234567")])
    receiver, receiver_key = new_agency(name="Receiver")
    made = client.post("/v1/referrals", headers=bearer(sender_key["key"]), json=data.referral(receiver["id"]))
    referral = made.get_json()
    # a public address written as such: no DNS asked
    hook = {
        "url": "https://93.184.215.14/referral-hooks",
        "events": ["referral.sent"],
        "description": "Cases",
    }
    webhook = client.post("/v1/webhooks", headers=bearer(sender_key["key"]), json=hook).get_json()
    # Each call with a body: (a valid body, the key that may send it), by (method, path) in the document.
    return {
        ("post", "/v1/agencies"): (data.agency(contacts=[data.contact(phone="+994501234567")]), ADMIN_KEY),
        ("patch", "/v1/agencies/{agency_id}"): (
            data.agency(contacts=[data.contact(phone="+994501234567")]),
            ADMIN_KEY,
            f"/v1/agencies/{sender['id']}",
        ),
        ("post", "/v1/referrals"): (data.referral(receiver["id"]), sender_key["key"]),
        ("post", "/v1/referrals/{referral_id}/decline"): (
            {"reason": "No."},
            receiver_key["key"],
            f"/v1/referrals/{referral['id']}/decline",
        ),
        ("post", "/v1/referrals/{referral_id}/complete"): (
            {"outcome": "Done."},
            receiver_key["key"],
            f"/v1/referrals/{referral['id']}/complete",
        ),
        ("post", "/v1/referrals/{referral_id}/cancel"): (
            {"reason": "No."},
            sender_key["key"],
            f"/v1/referrals/{referral['id']}/cancel",
        ),
        ("post", "/v1/referrals/{referral_id}/erase"): (
            {"reason": "Consent withdrawn."},
            sender_key["key"],
            f"/v1/referrals/{referral['id']}/erase",
        ),
        ("post", "/v1/webhooks"): (hook, sender_key["key"]),
        ("patch", "/v1/webhooks/{webhook_id}"): (
            {"url": hook["url"], "events": hook["events"]},
            sender_key["key"],
            f"/v1/webhooks/{webhook['id']}",
        ),
        "sender_key": sender_key["key"],
    }


def test_every_free_text_of_every_body_refuses_what_postgresql_cannot_store(client, world):
    document = client.get("/openapi.json").get_json()
    tried = set()
    for path, item in document["paths"].items():
        for method, operation in operations(item):
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            paths = list(free_text_paths(document, content["schema"])) if content else []
            if not paths:
                continue
            body, key, *concrete = world[(method, path)]
            for field in paths:
                for name, value in UNSTORABLE.items():
                    answer = client.open(
                        concrete[0] if concrete else path,
                        method=method.upper(),
                        headers=bearer(key),
                        json=with_value(body, field, value),
                    )
                    assert answer.status_code == 422, (
                        method,
                        path,
                        field,
                        name,
                        answer.get_data(as_text=True),
                    )
                    assert field in answer.get_json()["errors"], (method, path, field, name)
                tried.add(f"{method} {path} {field}")
    # the walk reached the texts the fault was seen in
    assert {
        "post /v1/referrals returnee.given_name",
        "post /v1/referrals/{referral_id}/cancel reason",
        "post /v1/agencies name",
        "post /v1/agencies contacts.0.name",
        "post /v1/webhooks url",
        "post /v1/webhooks description",
        "patch /v1/webhooks/{webhook_id} url",
    } <= tried
    assert len(tried) >= 20


def operations(item):
    return [(method, operation) for method, operation in item.items() if isinstance(operation, dict)]


def test_every_text_of_every_query_refuses_it_too(client, world):
    """A query is bytes in a URL: a NUL can come (%00) and is refused; a lone
    surrogate cannot (its bytes are not UTF-8, and arrive as U+FFFD)."""
    document = client.get("/openapi.json").get_json()
    tried = []
    for path, item in document["paths"].items():
        for _method, operation in operations(item):
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {}) if isinstance(parameter, dict) else {}
                if parameter.get("in") != "query" or schema.get("type") != "string" or "enum" in schema:
                    continue
                name = parameter["name"]
                answer = client.get(f"{path}?{name}=a%00b", headers=bearer(world["sender_key"]))
                assert answer.status_code == 422, (path, name, answer.get_data(as_text=True))
                assert name in answer.get_json()["errors"]
                surrogate = client.get(f"{path}?{name}=a%ED%A0%80b", headers=bearer(world["sender_key"]))
                assert surrogate.status_code < 500, (path, name)
                tried.append((path, name))
    assert ("/v1/agencies", "q") in tried


def test_the_raw_query_string_of_the_fault_is_refused(client, world):
    answer = client.get("/v1/agencies?q=%00abc", headers=bearer(ADMIN_KEY))
    assert answer.status_code == 422 and "q" in answer.get_json()["errors"]
