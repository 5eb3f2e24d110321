"""The returnee's personal data is sealed at rest (AES-GCM under
DATA_ENCRYPTION_KEYS): nothing of it in clear in any column of any table of
the referrals database, nor in a dump of it; a key is rotated while the
network runs; without a key the service does not start."""

import json
import os
import pathlib
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from services.referrals import cases
from services.referrals.rekey import SEALED
from services.referrals.service import ReferralsService
from shared import config
from shared.contract.referrals import NewReferral
from shared.storage.sealing import CannotOpen, KeysNotValid, Sealer, key_id, new_key, parse_keys
from tests.conftest import SEALER
from tests.services.conftest import caller_of
from tests.support import data

ROOT = pathlib.Path(__file__).resolve().parents[2]

AZERBAIJANI = data.returnee(
    given_name="Günel",
    family_name="Məmmədova",
    date_of_birth="1987-03-29",
    phone="+994507654321",
    region="AZ-BA",
    vulnerabilities=["Günel xəstədir"],
)
CYRILLIC = data.returnee(
    given_name="Гюльнара",
    family_name="Щербакова",
    date_of_birth="1979-11-05",
    phone="+994553219876",
    preferred_language="ru",
    region="AZ-GA",
    vulnerabilities=["Гюльнара одна с детьми"],
)


def personal(returnee):
    """What must never be in clear: names, birth date, phone, the free text."""
    full_name = f"{returnee['given_name']} {returnee['family_name']}"
    values = [
        returnee["given_name"],
        returnee["family_name"],
        full_name,
        returnee["date_of_birth"],
        returnee["phone"],
        returnee["phone"].lstrip("+"),
        *returnee["vulnerabilities"],
    ]
    return values


def forms(value):
    """How `value` would show in a row's text or a dump if it were kept in
    clear: as it is, JSON-escaped (\\u0259...), or as bytea's hex."""
    return {value, json.dumps(value)[1:-1], value.encode().hex()}


def found(needles, haystack):
    return sorted({needle for needle in needles for form in forms(needle) if form in haystack})


def rows_as_text(engine):
    """{table: every row of it as text}: each row cast whole (`t::text`), so
    every column of every type is in it, bytea as hex."""
    with engine.connect() as conn:
        tables = conn.scalars(
            text("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'")
        )
        return {
            table: "\n".join(conn.scalars(text(f"SELECT t::text FROM {table} AS t")))
            for table in list(tables)
        }


def pg_dump(url):
    dsn = (
        make_url(config.sqlalchemy_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    dumped = subprocess.run(
        ["pg_dump", "--no-owner", "--dbname", dsn], capture_output=True, text=True, timeout=120
    )
    assert dumped.returncode == 0, dumped.stderr
    return dumped.stdout


def a_whole_life(call, sender, receiver):
    """Referrals of both returnees through every move that writes a free
    text naming them; their ids."""

    def refer(returnee, key=None):
        reason = f"{returnee['given_name']} {returnee['family_name']} needs a place to live."
        return call(
            "create_referral", sender, data.referral(receiver, returnee=returnee, reason=reason), key
        )["id"]

    completed = refer(AZERBAIJANI, "idempotency-key-1")
    for move in ("accept", "start"):
        call("move_referral", receiver, completed, move, {})
    call("move_referral", receiver, completed, "complete", {"outcome": "Günel Məmmədova has a flat now."})
    declined = refer(CYRILLIC)
    call("move_referral", receiver, declined, "decline", {"reason": "Гюльнара Щербакова: нет мест."})
    cancelled = refer(AZERBAIJANI)
    call("move_referral", sender, cancelled, "cancel", {"reason": "Günel Məmmədova went back to Germany."})
    return completed, declined, cancelled


def test_no_returnee_data_in_clear_in_the_database_or_its_dump(referrals, pair, engines, database_urls):
    sender, receiver, _ = pair
    completed, declined, _ = a_whole_life(referrals, sender, receiver)
    # the API answers as before: the data is there, sealed
    assert referrals("get_referral", sender, completed)["returnee"] == AZERBAIJANI
    assert referrals("get_referral", sender, declined)["returnee"] == CYRILLIC
    assert referrals("get_referral", receiver, completed)["outcome"] == "Günel Məmmədova has a flat now."
    details = [entry["detail"] for entry in referrals("referral_history", sender, declined)["items"]]
    assert details == ["Гюльнара Щербакова needs a place to live.", "Гюльнара Щербакова: нет мест."]

    needles = personal(AZERBAIJANI) + personal(CYRILLIC) + ["Германи", "Germany", "нет мест", "has a flat"]
    engine = engines["REFERRALS_DATABASE_URL"]
    rows = rows_as_text(engine)
    assert {"referrals", "referral_history", "idempotency_keys", "outbox"} <= set(rows)
    for table, content in rows.items():
        assert found(needles, content) == [], table
    assert "AZ-BA" in rows["referrals"] and "AZ-GA" in rows["referrals"]  # the search finds what is in clear
    dump = pg_dump(database_urls["REFERRALS_DATABASE_URL"])
    assert found(needles, dump) == []
    assert "AZ-BA" in dump and "Günel" not in dump
    with engine.connect() as conn:  # what is there is the returnee, sealed under the run's key
        sealed = conn.scalar(text("SELECT returnee FROM referrals WHERE id = :id"), {"id": completed})
    assert SEALER.is_current(sealed) and SEALER.open_json(sealed)["family_name"] == "Məmmədova"


def sealed_values(engine):
    """Every sealed value in the database, as bytes."""
    with engine.connect() as conn:
        return [
            bytes(value)
            for table, columns in SEALED.items()
            for column in columns
            for value in conn.scalars(text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"))
        ]


def rekey(database_urls, keys, *args):
    env = dict(
        os.environ, REFERRALS_DATABASE_URL=database_urls["REFERRALS_DATABASE_URL"], DATA_ENCRYPTION_KEYS=keys
    )
    return subprocess.run(
        [sys.executable, "-m", "services.referrals.rekey", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_key_is_rotated_and_old_rows_stay_readable(
    container_factory, service_config, agencies, pair, engines, database_urls
):
    sender, receiver, _ = pair
    key_a, key_b = new_key(), new_key()

    def service_under(keys):
        container = container_factory(ReferralsService, dict(service_config, DATA_ENCRYPTION_KEYS=keys))
        container.start()
        return container, caller_of(container)

    def seen_by(call, ids):
        return [
            (call("get_referral", sender, referral_id), call("referral_history", sender, referral_id))
            for referral_id in ids
        ]

    under_a, call = service_under(key_a)
    written = a_whole_life(call, sender, receiver)
    before = seen_by(call, written)
    under_a.stop()

    both, call = service_under(f"{key_b},{key_a}")
    assert seen_by(call, written) == before
    body = data.referral(
        receiver,
        returnee=AZERBAIJANI,
        reason=f"{AZERBAIJANI['given_name']} {AZERBAIJANI['family_name']} needs a place to live.",
    )
    assert call("create_referral", sender, body, "idempotency-key-1")["id"] == written[0]  # a digest under A
    newer = call("create_referral", sender, data.referral(receiver, returnee=CYRILLIC))[
        "id"
    ]  # under B already
    engine = engines["REFERRALS_DATABASE_URL"]
    under = lambda key: sum(value[:8] == key_id(parse_keys(key)[0]) for value in sealed_values(engine))  # noqa: E731
    assert (
        under(key_a) == 3 * 3 + 1 + 3 * 2
    )  # 3 returnees, consents, reasons; 1 outcome; 2 history details each
    assert under(key_b) == 4  # the newer referral's returnee, consent, reason and its history's detail

    rotated = rekey(database_urls, f"{key_b},{key_a}", "--batch", "2")
    assert rotated.returncode == 0, rotated.stderr
    assert "referrals: 3 row(s) re-encrypted" in rotated.stdout
    assert "referral_history: 6 row(s) re-encrypted" in rotated.stdout
    assert (
        "request digests under an old key (gone within 24 h): 1" in rotated.stdout
    )  # cannot be sealed again
    assert "still under an old key" not in rotated.stdout
    assert under(key_a) == 0 and under(key_b) == len(sealed_values(engine))
    assert seen_by(call, written) == before
    both.stop()

    _, call = service_under(key_b)
    assert seen_by(call, written) == before
    assert call("get_referral", sender, newer)["returnee"] == CYRILLIC
    _, call = service_under(key_a)
    with pytest.raises(CannotOpen):
        call("get_referral", sender, written[0])
    again = rekey(database_urls, f"{key_b},{key_a}")
    assert "referrals: 0 row(s)" in again.stdout and "referral_history: 0 row(s)" in again.stdout


@pytest.mark.parametrize(
    "keys, said",
    [
        (None, "DATA_ENCRYPTION_KEYS is not set"),
        ("bm90IGEga2V5", "DATA_ENCRYPTION_KEYS: key 1 is not 32 bytes in base64"),
    ],
)
@pytest.mark.rules
def test_the_service_does_not_start_without_a_key(keys, said):
    env = {name: value for name, value in os.environ.items() if name != "DATA_ENCRYPTION_KEYS"}
    if keys:
        env["DATA_ENCRYPTION_KEYS"] = keys
    started = subprocess.run(
        [sys.executable, "-m", "shared.commands.serve", "referrals"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert started.stderr.strip().splitlines() == [
        f"The referrals service does not start: {said}" + started.stderr.strip().split(said, 1)[1]
    ]
    assert "Traceback" not in started.stderr


def test_a_container_without_a_key_does_not_start(container_factory, service_config):
    with pytest.raises(KeysNotValid):
        container_factory(ReferralsService, dict(service_config, DATA_ENCRYPTION_KEYS="")).start()


@pytest.mark.rules
def test_sealed_values_open_only_under_their_key_and_unaltered():
    key_a, key_b = new_key(), new_key()
    under_a, under_b_then_a, under_b = (
        Sealer.from_setting(keys) for keys in (key_a, f"{key_b},{key_a}", key_b)
    )
    sealed = under_a.seal_text("Günel Məmmədova")
    assert under_b_then_a.open_text(sealed) == "Günel Məmmədova"
    assert under_a.seal_text("Günel Məmmədova") != sealed  # a fresh nonce each time
    with pytest.raises(CannotOpen):
        under_b.open_text(sealed)
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(CannotOpen):
        under_a.open_text(altered)
    assert under_a.seal_json(None) is None and under_b.open_json(None) is None
    digest = under_a.digest("3f2a")
    assert under_b_then_a.digest_matches(digest, "3f2a") and not under_b_then_a.digest_matches(digest, "3f2b")
    assert not under_b.digest_matches(digest, "3f2a")
    with pytest.raises(KeysNotValid, match="the same key twice"):
        parse_keys(f"{key_a}, {key_a}")


def test_rotation_skips_a_row_the_service_holds_and_the_next_run_takes_it(engines, database_urls, databases):
    """The network runs meanwhile: a referral locked by a move is not
    waited for; the command says it is left, and a second run seals it."""
    key_a, key_b = new_key(), new_key()
    sessions = sessionmaker(engines["REFERRALS_DATABASE_URL"], expire_on_commit=False)
    under_a, under_b, sender = Sealer.from_setting(key_a), Sealer.from_setting(key_b), uuid.uuid4()
    with sessions.begin() as session:
        ids = [
            cases.create(session, under_a, sender, NewReferral().load(data.referral(uuid.uuid4())), 72)["id"]
            for _ in range(3)
        ]
    with sessions.begin() as holder:  # as a move holds its referral
        holder.execute(text("SELECT 1 FROM referrals WHERE id = :id FOR UPDATE"), {"id": ids[1]})
        first = rekey(database_urls, f"{key_b},{key_a}", "--batch", "1")
    assert "referrals: 2 row(s) re-encrypted" in first.stdout
    assert "referrals still under an old key (run again): 1" in first.stdout
    second = rekey(database_urls, f"{key_b},{key_a}")
    assert "referrals: 1 row(s) re-encrypted" in second.stdout and "still under" not in second.stdout
    with sessions.begin() as session:
        assert [cases.read(session, under_b, sender, referral_id)["returnee"] for referral_id in ids] == [
            data.returnee()
        ] * 3
