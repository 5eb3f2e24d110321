"""API keys are checked with the agencies service on every call, through
every gateway replica: a revoked key fails on the very next request."""

from tests.gateway.conftest import ADMIN_KEY, bearer


def test_a_revoked_key_fails_at_once_through_every_replica(make_app, services, new_agency):
    one, two = make_app().test_client(), make_app().test_client()
    agency, key = new_agency(http=one)
    mine = bearer(key["key"])
    for replica in (one, two):
        assert replica.get(f"/v1/agencies/{agency['id']}", headers=mine).status_code == 200

    revoked = one.delete(f"/v1/agencies/{agency['id']}/api-keys/{key['id']}", headers=bearer(ADMIN_KEY))
    assert revoked.status_code == 204

    for replica in (two, one):
        refused = replica.get(f"/v1/agencies/{agency['id']}", headers=mine)
        assert refused.status_code == 401
        assert refused.mimetype == "application/problem+json"


def test_a_missing_or_unknown_key_is_a_401_naming_the_scheme(client):
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, bearer("rnk_not-a-key")):
        refused = client.get("/v1/referrals", headers=headers)
        assert refused.status_code == 401
        assert refused.mimetype == "application/problem+json"
        assert refused.headers["WWW-Authenticate"].lower().startswith("bearer")
