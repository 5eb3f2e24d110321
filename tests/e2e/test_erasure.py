"""A referral erased mid-journey on the real network: afterwards the
returnee's name is nowhere: not in the API's answers, not in any of the
network's databases, not in any log line of its processes, not in any
message on any queue of its vhost. The receiver's coordinator is told."""

import json

import pytest
from sqlalchemy import text

from shared.storage.db import make_engine
from tests.e2e.conftest import ADMIN_KEY
from tests.support import data
from tests.support.sinks import wait_for

# Distinctive, so that any copy of any of them is found wherever it is.
FAMILY_NAME = "Xudaverdiyeva-Silinmə"
PHONE = "+994557319024"
PERSON = data.returnee(
    given_name="Şəmsiyyə",
    family_name=FAMILY_NAME,
    phone=PHONE,
    date_of_birth="1979-02-28",
    vulnerabilities=["Xudaverdiyeva's child needs a school"],
)
TRACES = (FAMILY_NAME, "Xudaverdiyeva", "Şəmsiyyə", PHONE, "1979-02-28")


def found_in(haystack):
    """The traces in `haystack` (text), as text, JSON-escaped or as bytea's hex."""
    hits = []
    for trace in TRACES:
        forms = (trace, json.dumps(trace)[1:-1], trace.encode().hex())
        if any(form in haystack for form in forms):
            hits.append(trace)
    return hits


def database_text(url):
    """Every row of every table, as PostgreSQL writes it as JSON (bytea as hex)."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            tables = (
                conn.execute(text("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'"))
                .scalars()
                .all()
            )
            return "\n".join(
                row
                for table in tables
                for row in conn.execute(text(f"SELECT to_jsonb(t)::text FROM {table} AS t")).scalars()
            )
    finally:
        engine.dispose()


def queued_messages(rabbit_manager, vhost):
    """Every message on every queue of the vhost, read without taking it
    (each is put back: ackmode reject_requeue_true)."""
    bodies = []
    for queue in rabbit_manager.get_queues(vhost):
        if not queue.get("messages"):
            continue
        taken = rabbit_manager._post(
            "queues",
            vhost,
            queue["name"],
            "get",
            json={"count": queue["messages"], "ackmode": "reject_requeue_true", "encoding": "auto"},
        )
        bodies += [json.dumps(message, ensure_ascii=False) for message in taken]
    return bodies


@pytest.fixture(scope="module")
def parties(network):
    made = {}
    for role in ("sender", "receiver"):
        contact = data.contact(
            name=f"{role.title()} Coordinator",
            email=f"{role}-erase@example.org",
            language="en",
            channels=["email"],
        )
        agency = network.call(
            "POST",
            "/v1/agencies",
            ADMIN_KEY,
            json=data.agency(name=f"{role.title()} NGO", contacts=[contact]),
        ).json()
        key = network.call(
            "POST", f"/v1/agencies/{agency['id']}/api-keys", ADMIN_KEY, json={"role": "agency"}
        ).json()["key"]
        made[role] = {"id": agency["id"], "key": key, "email": contact["email"]}
    return made


def test_an_erased_returnee_is_nowhere_in_the_network(network, parties, rabbit_manager):
    sender, receiver = parties["sender"], parties["receiver"]
    body = data.referral(receiver["id"], returnee=PERSON, reason=f"{FAMILY_NAME} and her child need a home.")
    made = network.call(
        "POST", "/v1/referrals", sender["key"], json=body, headers={"Idempotency-Key": "erase-e2e-1"}
    )
    assert made.status_code == 201, made.text
    referral = made.json()
    path = f"/v1/referrals/{referral['id']}"
    before = network.call("GET", path, receiver["key"])
    assert found_in(before.text) == list(TRACES)  # what the search finds, while it is there
    assert referral["reference"] in database_text(network.databases["REFERRALS_DATABASE_URL"])
    assert network.call("POST", path + "/accept", receiver["key"]).status_code == 200
    wait_for(
        lambda: [m for m in network.smtp.to(sender["email"]) if referral["reference"] in m["Subject"]],
        timeout=30,
        what="the sender told of the acceptance",
    )

    erased = network.call(
        "POST", path + "/erase", sender["key"], json={"reason": f"{FAMILY_NAME} withdrew her consent."}
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["returnee"] is None and erased.json()["erased_at"]
    mail = wait_for(
        lambda: [
            m
            for m in network.smtp.to(receiver["email"])
            if referral["reference"] in m["Subject"] and "erased" in m["Subject"]
        ],
        timeout=30,
        what="the receiver told of the erasure",
    )[0]
    assert not found_in(mail.as_string())
    wait_for(
        lambda: "referral_erased" in database_text(network.databases["NOTIFICATIONS_DATABASE_URL"]),
        what="the erasure recorded as handled",
    )

    # The API's answers.
    answers = [network.call("GET", path, key) for key in (sender["key"], receiver["key"])]
    answers += [network.call("GET", "/v1/referrals", key) for key in (sender["key"], receiver["key"])]
    answers += [
        network.call("GET", path + "/history", sender["key"]),
        network.call("GET", path + "/access-log", sender["key"]),
        network.call(
            "POST",
            "/v1/referrals",
            sender["key"],
            json=body,  # the same key: the same referral
            headers={"Idempotency-Key": "erase-e2e-1"},
        ),
    ]
    assert [answer.status_code for answer in answers] == [200] * 6 + [201]
    assert answers[-1].json()["id"] == referral["id"]
    assert [trace for answer in answers for trace in found_in(answer.text)] == []
    assert [entry["event"] for entry in answers[4].json()["items"]] == ["created", "accept", "erased"]

    # The databases.
    for key, url in network.databases.items():
        assert found_in(database_text(url)) == [], key

    # The log lines of every process.
    log = network.log()
    assert "notifications" in log and "referrals" in log and "gateway" in log  # it is the processes' output
    assert [line for line in log.splitlines() if found_in(line)] == []

    # The messages on the queues.
    queued = queued_messages(rabbit_manager, network.vhost)
    assert [message for message in queued if found_in(message)] == []
