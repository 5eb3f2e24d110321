"""The coordinator pages over the gateway (Flask's test client) and the real
services: sign-in by e-mailed link, sessions held by the agencies service,
CSRF on every form, moves and reads attributed to the coordinator."""

import uuid

import pytest
from sqlalchemy import text

from tests.gateway.conftest import ADMIN_KEY, bearer
from tests.support import data
from tests.support.inbox import csrf_of, latest_mail, sign_in_token

COOKIE = "inbox_session"


@pytest.fixture
def parties(new_agency):
    """A sender, a receiver (whose coordinator writes Russian) and an outsider,
    each with an agency key and one coordinator."""
    made = {}
    for role, language in (("sender", "en"), ("receiver", "ru"), ("outsider", "az")):
        agency, key = new_agency(
            name=f"{role.title()} NGO",
            contacts=[
                data.contact(
                    name=f"{role.title()} Coordinator",
                    email=f"{role}-{uuid.uuid4().hex[:6]}@example.org",
                    language=language,
                )
            ],
        )
        made[role] = {
            "agency": agency,
            "key": key["key"],
            "key_id": key["id"],
            "prefix": key["prefix"],
            "email": agency["contacts"][0]["email"],
            "contact": agency["contacts"][0],
        }
    return made


def sign_in(http, smtp_sink, address, count=1):
    """Sign `http` in as the coordinator with `address`, as a browser would;
    returns the answer to the link's button."""
    page = http.get("/inbox/sign-in")
    asked = http.post(
        "/inbox/sign-in", data={"email": address, "csrf_token": csrf_of(page.get_data(as_text=True))}
    )
    assert asked.status_code == 200, asked.get_data(as_text=True)
    token = sign_in_token(smtp_sink, address, count)
    button = http.get(f"/inbox/sign-in/{token}")
    assert button.status_code == 200
    return http.post(f"/inbox/sign-in/{token}", data={"csrf_token": csrf_of(button.get_data(as_text=True))})


def send_referral(client, parties, **overrides):
    made = client.post(
        "/v1/referrals",
        headers=bearer(parties["sender"]["key"]),
        json=data.referral(parties["receiver"]["agency"]["id"], **overrides),
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def history(client, parties, referral_id):
    return client.get(
        f"/v1/referrals/{referral_id}/history", headers=bearer(parties["sender"]["key"])
    ).get_json()["items"]


def test_every_page_but_sign_in_needs_a_session(client):
    for path in ("/inbox", f"/inbox/referrals/{uuid.uuid4()}", "/inbox/referrals/new"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == "/inbox/sign-in", path
    assert client.get("/inbox/sign-in").status_code == 200
    assert client.get("/inbox/static/inbox.css").status_code == 200
    for path, method in (("/inbox/no-such-page", "GET"), ("/inbox/sign-out", "GET")):
        answer = client.open(path, method=method)
        assert answer.status_code in (404, 405) and answer.mimetype == "text/html", path


def test_the_sign_in_page_answers_the_same_whether_the_address_is_known_or_not(client, parties, smtp_sink):
    answers = []
    for address in (parties["receiver"]["email"], "stranger@example.org"):
        page = client.get("/inbox/sign-in").get_data(as_text=True)
        answer = client.post("/inbox/sign-in", data={"email": address, "csrf_token": csrf_of(page)})
        html = answer.get_data(as_text=True)
        answers.append((answer.status_code, html.replace(csrf_of(html), "")))
    assert answers[0] == answers[1] and answers[0][0] == 200
    mail = latest_mail(smtp_sink, parties["receiver"]["email"])
    assert "ссылка" in mail["Subject"]  # the contact's language
    assert not smtp_sink.to("stranger@example.org")


def test_a_link_signs_in_once_with_its_button_and_sets_a_tight_cookie(client, parties, smtp_sink):
    address = parties["receiver"]["email"]
    page = client.get("/inbox/sign-in").get_data(as_text=True)
    client.post("/inbox/sign-in", data={"email": address, "csrf_token": csrf_of(page)})
    token = sign_in_token(smtp_sink, address)
    for _ in range(2):  # a mail scanner fetching the link spends nothing
        button = client.get(f"/inbox/sign-in/{token}")
        assert button.status_code == 200 and f'action="/inbox/sign-in/{token}"' in button.get_data(
            as_text=True
        )
    assert client.post(f"/inbox/sign-in/{token}").status_code == 400  # no CSRF token: nothing spent
    signed_in = client.post(
        f"/inbox/sign-in/{token}", data={"csrf_token": csrf_of(button.get_data(as_text=True))}
    )
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/inbox"
    cookie = signed_in.headers["Set-Cookie"]
    assert (
        f"{COOKIE}=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=Lax" in cookie
        and "Path=/inbox" in cookie
    )
    assert "Secure" not in cookie  # PUBLIC_URL is http here
    inbox = client.get("/inbox")
    assert inbox.status_code == 200 and "Receiver Coordinator" in inbox.get_data(as_text=True)
    again = client.post(f"/inbox/sign-in/{token}", data={"csrf_token": csrf_of(inbox.get_data(as_text=True))})
    assert again.status_code == 400 and 'href="/inbox/sign-in"' in again.get_data(as_text=True)
    assert client.get(f"/inbox/sign-in/{token}").status_code == 400
    assert client.get("/inbox/sign-in/not-a-token").status_code == 400


def test_cookies_are_secure_where_the_public_address_is_https(make_app, services):
    http = make_app(PUBLIC_URL="https://referrals.example.org").test_client()
    assert "Secure" in http.get("/inbox/sign-in").headers["Set-Cookie"]


def test_sign_in_requests_are_limited_per_address_known_or_not_and_per_client(
    make_app, services, parties, smtp_sink
):
    http = make_app().test_client()
    token = csrf_of(http.get("/inbox/sign-in").get_data(as_text=True))
    for address in (parties["receiver"]["email"], "stranger@example.org"):
        codes = [
            http.post("/inbox/sign-in", data={"email": address, "csrf_token": token}).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 5 + [429], address
    limited = http.post("/inbox/sign-in", data={"email": "stranger@example.org", "csrf_token": token})
    assert int(limited.headers["Retry-After"]) > 0
    assert len(smtp_sink.to(parties["receiver"]["email"])) <= 5
    strict_app = make_app(SIGN_IN_LIMIT_PER_CLIENT="3/hour")
    strict = strict_app.test_client()
    token = csrf_of(strict.get("/inbox/sign-in").get_data(as_text=True))
    codes = [
        strict.post("/inbox/sign-in", data={"email": f"n{n}@example.org", "csrf_token": token}).status_code
        for n in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    # A client over its limit spends nothing of an address's: it cannot lock a coordinator out.
    address = parties["sender"]["email"]
    for _ in range(6):
        assert strict.post("/inbox/sign-in", data={"email": address, "csrf_token": token}).status_code == 429
    elsewhere = strict_app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"  # another client (a documentation address)
    token = csrf_of(elsewhere.get("/inbox/sign-in").get_data(as_text=True))
    assert elsewhere.post("/inbox/sign-in", data={"email": address, "csrf_token": token}).status_code == 200


def test_behind_a_trusted_proxy_the_client_is_the_one_it_names(make_app, services):
    http = make_app(TRUSTED_PROXIES="1", SIGN_IN_LIMIT_PER_CLIENT="1/hour").test_client()
    token = csrf_of(http.get("/inbox/sign-in").get_data(as_text=True))

    def ask(client_address):
        return http.post(
            "/inbox/sign-in",
            data={"email": f"{uuid.uuid4().hex}@example.org", "csrf_token": token},
            headers={"X-Forwarded-For": client_address},
        ).status_code

    assert [ask("198.51.100.1"), ask("198.51.100.1"), ask("198.51.100.2")] == [200, 429, 200]


def test_a_coordinator_answers_and_the_history_names_who_did_each_move(client, parties, smtp_sink, engines):
    made = send_referral(client, parties)
    assert sign_in(client, smtp_sink, parties["receiver"]["email"]).status_code == 303
    inbox = client.get("/inbox").get_data(as_text=True)
    assert made["reference"] in inbox and "Aysel Mammadova" in inbox
    page = client.get(f"/inbox/referrals/{made['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Aysel" in html and "Needs a place to live" in html
    for move in ("accept", "decline"):
        assert f'/inbox/referrals/{made["id"]}/{move}"' in html
    assert f'/inbox/referrals/{made["id"]}/cancel"' not in html  # the sender's move
    refused = client.post(f"/inbox/referrals/{made['id']}/accept")  # no CSRF token
    assert refused.status_code == 400
    assert (
        client.get(f"/v1/referrals/{made['id']}", headers=bearer(parties["sender"]["key"])).get_json()[
            "status"
        ]
        == "sent"
    )
    accepted = client.post(f"/inbox/referrals/{made['id']}/accept", data={"csrf_token": csrf_of(html)})
    assert accepted.status_code == 303 and accepted.headers["Location"] == f"/inbox/referrals/{made['id']}"
    entries = history(client, parties, made["id"])
    receiver = parties["receiver"]
    assert entries[0]["actor"] == {
        "type": "api_key",
        "id": parties["sender"]["key_id"],
        "name": parties["sender"]["prefix"],
    }
    assert entries[1]["event"] == "accept" and entries[1]["actor"] == {
        "type": "coordinator",
        "id": receiver["contact"]["id"],
        "name": "Receiver Coordinator",
    }
    shown = client.get(f"/inbox/referrals/{made['id']}").get_data(as_text=True)
    assert "Receiver Coordinator" in shown and parties["sender"]["prefix"] in shown
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        readers = conn.execute(
            text(
                "SELECT DISTINCT action, actor_type, actor_id::text, actor_name FROM referral_access_log "
                "WHERE referral_id = :id AND actor_type = 'coordinator'"
            ),
            {"id": made["id"]},
        ).all()
    assert {(action, kind) for action, kind, _, _ in readers} >= {
        ("list", "coordinator"),
        ("read", "coordinator"),
        ("accept", "coordinator"),
    }
    assert {(who, name) for _, _, who, name in readers} == {
        (receiver["contact"]["id"], "Receiver Coordinator")
    }


def test_a_move_that_needs_a_text_is_refused_without_it_and_keeps_the_page(client, parties, smtp_sink):
    made = send_referral(client, parties)
    sign_in(client, smtp_sink, parties["receiver"]["email"])
    token = csrf_of(client.get(f"/inbox/referrals/{made['id']}").get_data(as_text=True))
    refused = client.post(
        f"/inbox/referrals/{made['id']}/decline", data={"reason": "  ", "csrf_token": token}
    )
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.get_data(as_text=True)
    declined = client.post(
        f"/inbox/referrals/{made['id']}/decline",
        data={"reason": "No places left this month.", "csrf_token": token},
    )
    assert declined.status_code == 303
    last = history(client, parties, made["id"])[-1]
    assert (last["event"], last["detail"], last["actor"]["type"]) == (
        "decline",
        "No places left this month.",
        "coordinator",
    )
    late = client.post(f"/inbox/referrals/{made['id']}/accept", data={"csrf_token": token})
    assert late.status_code == 303  # 409 from the service: the page says so, and shows how it stands


def test_another_agency_s_coordinator_finds_no_such_referral(client, parties, smtp_sink):
    made = send_referral(client, parties)
    sign_in(client, smtp_sink, parties["outsider"]["email"])
    page = client.get(f"/inbox/referrals/{made['id']}")
    assert page.status_code == 404 and "Aysel" not in page.get_data(as_text=True)
    token = csrf_of(client.get("/inbox").get_data(as_text=True))
    assert client.post(f"/inbox/referrals/{made['id']}/accept", data={"csrf_token": token}).status_code == 404
    assert made["reference"] not in client.get("/inbox").get_data(as_text=True)


def test_signing_out_ends_the_session_on_the_server(make_app, services, parties, smtp_sink):
    app = make_app()
    http = app.test_client()
    sign_in(http, smtp_sink, parties["sender"]["email"])
    cookie = http.get_cookie(COOKIE, path="/inbox").value
    token = csrf_of(http.get("/inbox").get_data(as_text=True))
    assert http.post("/inbox/sign-out", data={"csrf_token": token}).status_code == 303
    replay = app.test_client()
    replay.set_cookie(COOKIE, cookie, path="/inbox")
    assert replay.get("/inbox").status_code == 303  # the old cookie opens nothing


def test_signing_in_over_a_live_session_ends_the_old_one(make_app, services, parties, smtp_sink):
    app = make_app()
    http = app.test_client()
    sign_in(http, smtp_sink, parties["sender"]["email"])
    old = http.get_cookie(COOKIE, path="/inbox").value
    # a second link, asked for elsewhere, opened in the signed-in browser
    elsewhere = app.test_client()
    page = elsewhere.get("/inbox/sign-in")
    csrf = csrf_of(page.get_data(as_text=True))
    elsewhere.post("/inbox/sign-in", data={"email": parties["sender"]["email"], "csrf_token": csrf})
    token = sign_in_token(smtp_sink, parties["sender"]["email"], count=2)
    button = http.get(f"/inbox/sign-in/{token}")
    used = http.post(f"/inbox/sign-in/{token}", data={"csrf_token": csrf_of(button.get_data(as_text=True))})
    assert used.status_code == 303
    assert http.get("/inbox").status_code == 200  # the new session
    replay = app.test_client()
    replay.set_cookie(COOKIE, old, path="/inbox")
    assert replay.get("/inbox").status_code == 303  # the old cookie opens nothing


def test_removing_a_contact_ends_their_session_at_once(client, parties, smtp_sink):
    sign_in(client, smtp_sink, parties["receiver"]["email"])
    assert client.get("/inbox").status_code == 200
    changed = client.patch(
        f"/v1/agencies/{parties['receiver']['agency']['id']}",
        headers=bearer(ADMIN_KEY),
        json={"contacts": [data.contact()]},
    )
    assert changed.status_code == 200
    assert client.get("/inbox").status_code == 303


def test_a_new_referral_is_refused_without_consent_keeping_the_form_then_sent(client, parties, smtp_sink):
    sign_in(client, smtp_sink, parties["sender"]["email"])
    receiver = parties["receiver"]["agency"]
    form = client.get("/inbox/referrals/new").get_data(as_text=True)
    fields = {
        "csrf_token": csrf_of(form),
        "form_id": uuid.uuid4().hex,
        "service_type": "housing",
        "search_region": "",
        "search_language": "",
        "receiving_agency_id": receiver["id"],
        "priority": "urgent",
        "reason": "Needs a flat.",
        "given_name": "Aysel",
        "family_name": "Mammadova",
        "region": "AZ-GA",
        "returned_from": "DE",
        "consent_method": "written",
        "consent_obtained_at": "2026-11-20T10:30",
    }
    found = client.post("/inbox/referrals/new", data=dict(fields, action="search")).get_data(as_text=True)
    assert (
        receiver["name"] in found and parties["sender"]["agency"]["name"] not in found.split("<fieldset")[2]
    )
    nul = client.post(
        "/inbox/referrals/new",
        data=dict(fields, action="send", consent_given="yes", given_name="Ay\u0000sel"),
    )
    assert nul.status_code == 422 and 'id="given_name-error"' in nul.get_data(as_text=True)  # never a 500
    refused = client.post("/inbox/referrals/new", data=dict(fields, action="send"))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'id="consent_given-error"' in html and 'value="Aysel"' in html and "Needs a flat." in html
    assert client.get("/v1/referrals", headers=bearer(parties["sender"]["key"])).get_json()["total"] == 0
    sent = client.post("/inbox/referrals/new", data=dict(fields, action="send", consent_given="yes"))
    assert sent.status_code == 303
    made = client.get("/v1/referrals", headers=bearer(parties["sender"]["key"])).get_json()["items"]
    assert len(made) == 1 and made[0]["priority"] == "urgent"
    assert made[0]["consent"]["obtained_at"] == "2026-11-20T10:30:00+04:00"  # typed as Baku's time
    assert sent.headers["Location"] == f"/inbox/referrals/{made[0]['id']}"
    again = client.post("/inbox/referrals/new", data=dict(fields, action="send", consent_given="yes"))
    assert again.status_code == 303  # the same form twice (a double click): still one referral
    assert client.get("/v1/referrals", headers=bearer(parties["sender"]["key"])).get_json()["total"] == 1
    mail = latest_mail(smtp_sink, parties["receiver"]["email"], what="the receiver's e-mail")
    assert f"http://localhost:8000/inbox/referrals/{made[0]['id']}" in mail.get_body(("plain",)).get_content()
    assert "Aysel" not in mail.as_string()


def test_pages_carry_the_security_headers(client, parties, smtp_sink):
    sign_in(client, smtp_sink, parties["receiver"]["email"])
    assert client.get("/inbox").headers["Cache-Control"] == "no-store"  # returnees' data: no copies kept
    for answer in (client.get("/inbox/sign-in"), client.get("/v1/agencies", headers=bearer(ADMIN_KEY))):
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        policy = answer.headers["Content-Security-Policy"]
        assert (
            "script-src 'self'" in policy
            and "unsafe-inline" not in policy
            and "frame-ancestors 'none'" in policy
        )


def test_pages_speak_the_coordinator_s_language_until_they_choose_another(client, parties, smtp_sink):
    sign_in(client, smtp_sink, parties["receiver"]["email"])
    assert '<html lang="ru">' in client.get("/inbox").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/inbox?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/inbox/referrals/new").get_data(as_text=True)  # remembered


def test_the_sender_s_coordinator_erases_the_returnee_s_data_and_both_sides_see_it_erased(
    client, parties, smtp_sink
):
    made = send_referral(client, parties)
    sign_in(client, smtp_sink, parties["receiver"]["email"])
    receiver_page = client.get(f"/inbox/referrals/{made['id']}").get_data(as_text=True)
    assert f'/inbox/referrals/{made["id"]}/erase"' not in receiver_page  # the sender's alone
    token = csrf_of(receiver_page)
    assert (
        client.post(
            f"/inbox/referrals/{made['id']}/erase", data={"reason": "x", "csrf_token": token}
        ).status_code
        == 403
    )
    client.post("/inbox/sign-out", data={"csrf_token": token})

    sign_in(client, smtp_sink, parties["sender"]["email"])
    page = client.get(f"/inbox/referrals/{made['id']}").get_data(as_text=True)
    assert f'/inbox/referrals/{made["id"]}/erase"' in page and "for both agencies" in page
    token = csrf_of(page)
    assert (
        client.post(f"/inbox/referrals/{made['id']}/erase", data={"reason": "No"}).status_code == 400
    )  # CSRF
    refused = client.post(f"/inbox/referrals/{made['id']}/erase", data={"reason": " ", "csrf_token": token})
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.get_data(as_text=True)
    assert "Aysel" in client.get(f"/inbox/referrals/{made['id']}").get_data(
        as_text=True
    )  # nothing erased yet
    erased = client.post(
        f"/inbox/referrals/{made['id']}/erase",
        data={"reason": "She withdrew her consent.", "csrf_token": token},
    )
    assert erased.status_code == 303
    shown = client.get(f"/inbox/referrals/{made['id']}").get_data(as_text=True)
    assert "You erased the returnee&#39;s data" in shown or "You erased the returnee's data" in shown
    assert "Aysel" not in shown and "Needs a place to live" not in shown
    assert (
        "The returnee&#39;s data has been erased." in shown or "The returnee's data has been erased." in shown
    )
    assert f'/inbox/referrals/{made["id"]}/erase"' not in shown  # once
    assert "Aysel" not in client.get("/inbox").get_data(as_text=True)
    last = history(client, parties, made["id"])[-1]
    assert last["event"] == "erased" and last["actor"]["type"] == "coordinator"
    client.post("/inbox/sign-out", data={"csrf_token": csrf_of(shown)})

    sign_in(client, smtp_sink, parties["receiver"]["email"], count=2)  # in Russian
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "Данные удалены" in inbox and "Aysel" not in inbox
    seen = client.get(f"/inbox/referrals/{made['id']}").get_data(as_text=True)
    assert "Данные гражданина удалены" in seen and "Aysel" not in seen
