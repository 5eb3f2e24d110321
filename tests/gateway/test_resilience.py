"""The gateway outlives the services it calls: a service that stops is a
504 problem (quoting the request id) while it is away, and the very next
request after it is back works, without restarting the gateway. /readyz
names whatever does not answer."""

from tests.gateway.conftest import ADMIN_KEY, SERVICES, bearer
from tests.support.sinks import free_port


def test_the_gateway_outlives_a_service_restart(make_app, start_service):
    running = {name: start_service(name) for name in SERVICES}
    client = make_app(RPC_TIMEOUT_SECONDS="1").test_client()
    assert client.get("/v1/agencies", headers=bearer(ADMIN_KEY)).status_code == 200

    running["agencies"].stop()  # its queue stays; nobody takes the calls
    waited = client.get("/v1/agencies", headers={**bearer(ADMIN_KEY), "X-Request-ID": "while-away"})
    assert waited.status_code == 504 and int(waited.headers["Retry-After"]) > 0
    assert waited.mimetype == "application/problem+json"
    assert waited.get_json()["request_id"] == "while-away"
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["down"] == ["agencies"]

    start_service("agencies")  # a new process of the same service
    back = client.get("/v1/agencies", headers=bearer(ADMIN_KEY))
    assert back.status_code == 200, back.get_data(as_text=True)
    assert client.get("/readyz").status_code == 200


def test_readyz_names_a_service_that_is_not_running(make_app, start_service):
    start_service("agencies")
    start_service("referrals")
    client = make_app().test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}

    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.mimetype == "application/problem+json"
    body = not_ready.get_json()
    assert body["down"] == ["notifications"]
    assert "notifications" in body["detail"]

    start_service("notifications")
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "services": ["agencies", "referrals", "notifications"]}


def test_without_the_broker_calls_are_503_and_readyz_names_rabbitmq(make_app):
    client = make_app(AMQP_URI=f"amqp://guest:guest@127.0.0.1:{free_port()}/").test_client()
    assert client.get("/healthz").status_code == 200
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["down"] == ["rabbitmq"]
    refused = client.get("/v1/agencies", headers=bearer(ADMIN_KEY))
    assert refused.status_code == 503
    assert refused.mimetype == "application/problem+json"
    assert "broker" in refused.get_json()["detail"]


def test_a_service_whose_database_is_away_is_a_503_not_a_500(
    make_app, container_factory, settings, start_service
):
    """The API and the pages alike: "try again soon", never "something broke"."""
    away = dict(
        settings, AGENCIES_DATABASE_URL="postgresql://postgres@127.0.0.1:9/agencies", BOOTSTRAP_ADMIN_KEY=""
    )
    container_factory(SERVICES["agencies"], away).start()
    client = make_app().test_client()
    api = client.get("/v1/agencies", headers=bearer("rnk_any-key"))
    assert api.status_code == 503 and api.mimetype == "application/problem+json"
    assert int(api.headers["Retry-After"]) > 0
    page = client.get("/inbox/sign-in/some-token")
    assert page.status_code == 503 and page.mimetype == "text/html" and page.headers["Retry-After"]
