"""The OpenAPI document the gateway serves holds the contract
(../shared/API.md): every call with its success status, query parameters
and body fields, the bearer key, and every error as a problem."""

import pathlib
import re
import warnings

import pytest
import schemathesis

from gateway.app import create_app
from shared import config

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


API_MD = pathlib.Path(__file__).resolve().parents[3] / "shared" / "API.md"

# The contract's calls: (method, path, success status, query parameters, body fields, headers).
CONTRACT = [
    ("POST", "/v1/agencies", 201, (), (), ()),
    (
        "GET",
        "/v1/agencies",
        200,
        ("service", "region", "language", "accepting", "q", "page", "per_page"),
        (),
        (),
    ),
    ("GET", "/v1/agencies/{id}", 200, (), (), ()),
    ("PATCH", "/v1/agencies/{id}", 200, (), (), ()),
    ("POST", "/v1/agencies/{id}/api-keys", 201, (), ("role",), ()),
    ("DELETE", "/v1/agencies/{id}/api-keys/{key_id}", 204, (), (), ()),
    ("POST", "/v1/referrals", 201, (), (), ("Idempotency-Key",)),
    ("GET", "/v1/referrals", 200, ("box", "status", "service_type", "overdue", "page", "per_page"), (), ()),
    ("GET", "/v1/referrals/{id}", 200, (), (), ()),
    ("POST", "/v1/referrals/{id}/accept", 200, (), (), ()),
    ("POST", "/v1/referrals/{id}/decline", 200, (), ("reason",), ()),
    ("POST", "/v1/referrals/{id}/start", 200, (), (), ()),
    ("POST", "/v1/referrals/{id}/complete", 200, (), ("outcome",), ()),
    ("POST", "/v1/referrals/{id}/cancel", 200, (), ("reason",), ()),
    ("GET", "/v1/referrals/{id}/history", 200, (), (), ()),
    ("POST", "/v1/referrals/{id}/erase", 200, (), ("reason",), ()),
    ("GET", "/v1/notifications", 200, ("referral_id", "status", "page", "per_page"), (), ()),
    ("POST", "/v1/webhooks", 201, (), ("url", "events", "description"), ()),
    ("GET", "/v1/webhooks", 200, (), (), ()),
    ("PATCH", "/v1/webhooks/{id}", 200, (), ("url", "events", "active"), ()),
    ("DELETE", "/v1/webhooks/{id}", 204, (), (), ()),
    ("POST", "/v1/webhooks/{id}/rotate-secret", 200, (), (), ()),
    ("POST", "/v1/webhooks/{id}/test", 202, (), (), ()),
    ("GET", "/v1/webhooks/{id}/deliveries", 200, ("status", "page", "per_page"), (), ()),
    ("GET", "/v1/reports/referrals", 200, ("from", "to", "group_by"), (), ()),
    ("GET", "/healthz", 200, (), (), ()),
    ("GET", "/readyz", 200, (), (), ()),
]

# Calls API.md's additions name that the gateway does not serve
# yet, each with the open issue that builds it: a call of API.md must be in
# CONTRACT or here, and leaves this list for CONTRACT when its issue lands.
PENDING = {
    # The two agencies of a referral write to each other: issue 25.
    ("GET", "/v1/referrals/{id}/messages", 200, ("page", "per_page"), (), ()): 25,
    ("POST", "/v1/referrals/{id}/messages", 201, (), ("text",), ()): 25,
}

TABLE_ROW = re.compile(
    r"^\| `(?P<method>GET|POST|PUT|PATCH|DELETE) (?P<path>[^`?\s]+)(?:\?(?P<query>[^`]*))?`"
    r"(?P<rest>[^|]*)\|[^|]*\|\D*(?P<status>\d{3})"
)
HEALTH_LINE = re.compile(r"`(?P<method>GET) (?P<path>/\w+)` \(no key\):\s+(?P<status>\d{3})")


def calls_in_api_md(text):
    """The calls API.md's tables (and its health paragraph) list, as CONTRACT has them."""
    found = []
    for line in text.splitlines():
        row = TABLE_ROW.match(line)
        if row:
            query = tuple(part.split("=")[0] for part in (row["query"] or "").split("&") if part)
            body = re.search(r"`\{([^}]*)\}`", row["rest"])
            fields = tuple(re.match(r'\s*"(\w+)"', part)[1] for part in body[1].split(",")) if body else ()
            headers = tuple(re.findall(r"`([\w-]+)` header", row["rest"]))
            found.append((row["method"], row["path"], int(row["status"]), query, fields, headers))
    for health in HEALTH_LINE.finditer(text):
        found.append((health["method"], health["path"], int(health["status"]), (), (), ()))
    return found


def same_path(template):
    """/v1/agencies/{agency_id} and /v1/agencies/{id} are the same path."""
    return re.sub(r"\{[^}]+\}", "{}", template)


@pytest.fixture(scope="module")
def built():
    """The app and its document, with the warnings made while building them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = create_app(config.load(SESSION_SECRET="openapi-test"))
        document = app.test_client().get("/openapi.json").get_json()
    return app, document, caught


@pytest.fixture(scope="module")
def document(built):
    return built[1]


def operation(document, method, path):
    for template, item in document["paths"].items():
        if same_path(template) == same_path(path) and method.lower() in item:
            return item[method.lower()], item.get("parameters", [])
    raise AssertionError(f"{method} {path} is not in the document")


def resolve(document, node):
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = document["components"][kind][name]
    return node


def ref_name(node):
    return node["$ref"].rsplit("/", 1)[-1]


def operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield path, method, op, item.get("parameters", [])


@pytest.mark.skipif(not API_MD.exists(), reason=f"{API_MD} is not on this machine")
def test_the_list_of_calls_here_is_the_one_in_api_md():
    assert sorted(calls_in_api_md(API_MD.read_text())) == sorted(CONTRACT + list(PENDING))


def test_no_pending_call_is_served_yet_and_unlisted(document):
    """A call that leaves PENDING is served, and then belongs in CONTRACT."""
    served = {
        (method.upper(), same_path(path)) for path, item in document["paths"].items() for method in item
    }
    for call, _issue in PENDING.items():
        assert (call[0], same_path(call[1])) not in served, (
            f"{call[0]} {call[1]} is served: move it to CONTRACT"
        )


@pytest.mark.parametrize(
    "method, path, status, query, body_fields, headers", CONTRACT, ids=[f"{c[0]} {c[1]}" for c in CONTRACT]
)
def test_every_call_of_the_contract_is_in_the_document(
    document, method, path, status, query, body_fields, headers
):
    op, path_parameters = operation(document, method, path)
    assert str(status) in op["responses"]
    parameters = [resolve(document, p) for p in op.get("parameters", []) + path_parameters]
    assert set(query) <= {p["name"] for p in parameters if p["in"] == "query"}
    assert set(headers) <= {p["name"] for p in parameters if p["in"] == "header"}
    assert path.count("{") == len([p for p in parameters if p["in"] == "path"])
    if body_fields:
        schema = resolve(document, op["requestBody"]["content"]["application/json"]["schema"])
        assert set(body_fields) <= set(schema["properties"])


def test_the_access_log_is_in_the_document(document):
    """Named in API.md's prose rather than a table, so not in CONTRACT."""
    op, path_parameters = operation(document, "GET", "/v1/referrals/{id}/access-log")
    assert "200" in op["responses"] and "403" in op["responses"]
    parameters = [resolve(document, p) for p in op.get("parameters", []) + path_parameters]
    assert {"page", "per_page"} <= {p["name"] for p in parameters if p["in"] == "query"}


def test_the_document_describes_every_route_the_gateway_serves(built):
    app, document, _ = built
    served = {
        (method, same_path(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)))
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in ("static", "api-docs.openapi_json")
        and not rule.endpoint.startswith("apidocs.")  # /docs: the document shown (gateway/apidocs.py)
        and not rule.endpoint.startswith("inbox.")  # the coordinator pages: HTML, not the partners' API
        and rule.endpoint
        != "metrics"  # Prometheus's scrape (gateway/metrics.py): for operators, not partners
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(method.upper(), same_path(path)) for path, method, _, _ in operations(document)}
    assert served == documented


def test_the_document_is_valid_openapi_and_built_without_warnings(built, document):
    schemathesis.openapi.from_dict(document).validate()
    assert document["openapi"].startswith("3.")
    assert [str(w.message) for w in built[2] if "apispec" in w.filename or "smorest" in w.filename] == []


def test_v1_calls_need_the_bearer_key_and_health_checks_none(document):
    assert document["components"]["securitySchemes"]["bearerKey"]["type"] == "http"
    assert document["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerKey": []}]
    for path, method, op, _ in operations(document):
        if path.startswith("/v1/"):
            assert "security" not in op, f"{method} {path} overrides the bearer key"
            assert "401" in op["responses"]
        else:
            assert op["security"] == [], f"{method} {path} should need no key"


def test_every_error_is_a_problem_and_every_status_is_listed(document):
    for path, method, op, _path_parameters in operations(document):
        codes = set(op["responses"])
        assert "default" not in codes  # each status named, none left to a catch-all
        expected = {"400", "431"}  # gunicorn's own refusals, before the app
        if any(resolve(document, p)["in"] == "query" for p in op.get("parameters", [])):
            expected |= {"422"}
        if path.startswith("/v1/"):
            expected |= {"401", "429", "500", "503", "504"}
        if "requestBody" in op:
            expected |= {"400", "413", "415", "422"}
        if "{" in path:
            expected |= {"404"}
        assert expected <= codes, f"{method} {path} lacks {expected - codes}"
        for code, response in op["responses"].items():
            response = resolve(document, response)
            assert "X-Request-ID" in response.get("headers", {}), f"{method} {path} {code}"
            if int(code) >= 400:
                assert list(response["content"]) == ["application/problem+json"], f"{method} {path} {code}"
                schema = response["content"]["application/problem+json"]["schema"]
                assert ref_name(schema) in ("Problem", "NotReady")
                assert {"type", "title", "status", "request_id"} <= set(resolve(document, schema)["required"])
            elif code != "204":
                assert list(response["content"]) == ["application/json"], f"{method} {path} {code}"
    too_many = resolve(document, {"$ref": "#/components/responses/TOO_MANY_REQUESTS"})
    assert "Retry-After" in too_many["headers"]


def test_request_bodies_admit_no_unknown_fields(document):
    for path, method, op, _ in operations(document):
        if "requestBody" in op:
            schema = resolve(document, op["requestBody"]["content"]["application/json"]["schema"])
            assert schema["additionalProperties"] is False, f"{method} {path}"


def test_the_docs_page_shows_the_document(built):
    page = built[0].test_client().get("/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.get_data(as_text=True).lower()
    assert "openapi.json" in page.get_data(as_text=True)
