"""How messages leave, against real servers: SMTP conversations with
aiosmtpd (plain, and STARTTLS with login verified against a private CA),
and the `http` SMS backend against a real HTTP server."""

import email.utils
import logging
import time

import eventlet
import pytest

from services.notifications.transports import (
    SMS_BACKENDS,
    DeliveryError,
    HttpSms,
    LogSms,
    Mailer,
    PermanentDeliveryError,
    SmsBackend,
    sms_backend,
)
from shared import config
from tests.support.sinks import Credentials, HttpSink, SmtpSink, free_port, wait_for
from tests.support.tls import self_signed_certificate, server_context

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


HTML = "<p>Referral <b>REF-2026-000123</b></p>"


def settings(**overrides):
    return config.load({}, SMTP_HOST="127.0.0.1", **overrides)


def test_an_email_is_a_real_smtp_conversation_with_text_and_html(smtp_sink):
    mailer = Mailer(settings(SMTP_PORT=str(smtp_sink.port)))
    mailer.send("olga@example.org", "Направление REF-2026-000123 принято", "Plain words: ə ş ж", HTML)
    [(recipients, message)] = smtp_sink.messages
    assert recipients == ["olga@example.org"]
    assert message["From"] == "Referral network <no-reply@referrals.example.org>"  # SMTP_FROM
    assert message["To"] == "olga@example.org"
    assert message["Subject"] == "Направление REF-2026-000123 принято"
    assert message["Message-ID"].endswith("@referrals.example.org>")
    assert email.utils.parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "Plain words: ə ş ж"
    assert message.get_body(("html",)).get_content().strip() == HTML
    assert smtp_sink.sessions == [{"tls": False, "login": None}]


@pytest.mark.parametrize(
    "subject",
    [
        "Yeni yönləndirmə REF-2026-000123: mənzil təminatı",
        "REF-2026-000123 saylı yönləndirmənizə hələ cavab verilməyib",
        "Истёк срок ответа: направление REF-2026-000123 ждёт вашего ответа, вид помощи: психосоциальная поддержка",
    ],
)
def test_a_long_non_ascii_subject_arrives_word_for_word(smtp_sink, subject):
    """Folded into several encoded words, it keeps the spaces between them."""
    Mailer(settings(SMTP_PORT=str(smtp_sink.port))).send("olga@example.org", subject, "text", HTML)
    assert smtp_sink.messages[0][1]["Subject"] == subject


def test_a_non_ascii_sender_name_is_encoded(smtp_sink):
    sender = "Yönləndirmə şəbəkəsi <no-reply@referrals.example.org>"
    Mailer(settings(SMTP_PORT=str(smtp_sink.port), SMTP_FROM=sender)).send("olga@example.org", "S", "t", HTML)
    assert smtp_sink.messages[0][1]["From"] == sender


def test_each_message_has_its_own_message_id(smtp_sink):
    mailer = Mailer(settings(SMTP_PORT=str(smtp_sink.port)))
    for _ in range(2):
        mailer.send("olga@example.org", "Subject", "text", HTML)
    first, second = (message["Message-ID"] for _, message in smtp_sink.messages)
    assert first != second


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_sink(certificate):
    """An SMTP server that takes mail only over STARTTLS and after login."""
    with SmtpSink(
        tls_context=server_context(*certificate),
        require_starttls=True,
        authenticator=Credentials("mailer", "s3cret"),
        auth_required=True,
    ) as sink:
        yield sink


def tls_settings(sink, certificate, **overrides):
    values = {
        "SMTP_PORT": str(sink.port),
        "SMTP_STARTTLS": "true",
        "SMTP_CA_FILE": str(certificate[0]),
        "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": "s3cret",
    }
    return settings(**dict(values, **overrides))


def test_starttls_and_login_with_a_private_ca(tls_sink, certificate):
    Mailer(tls_settings(tls_sink, certificate)).send("olga@example.org", "Subject", "text", HTML)
    assert len(tls_sink.messages) == 1
    assert tls_sink.sessions == [{"tls": True, "login": "mailer"}]


def test_the_server_certificate_is_verified_by_default(tls_sink, certificate):
    """Without SMTP_CA_FILE the system's CAs decide, and they do not know
    this certificate: nothing is sent (and the password never leaves)."""
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        Mailer(tls_settings(tls_sink, certificate, SMTP_CA_FILE="")).send("olga@example.org", "S", "t", HTML)
    assert tls_sink.messages == []


def test_a_wrong_password_is_a_delivery_error(tls_sink, certificate):
    with pytest.raises(DeliveryError, match="535"):
        Mailer(tls_settings(tls_sink, certificate, SMTP_PASSWORD="wrong")).send(
            "olga@example.org", "S", "t", HTML
        )
    assert tls_sink.messages == []


def test_without_starttls_a_server_that_demands_it_refuses(tls_sink, certificate):
    with pytest.raises(DeliveryError, match="530"):
        Mailer(tls_settings(tls_sink, certificate, SMTP_STARTTLS="false", SMTP_USERNAME="")).send(
            "olga@example.org", "S", "t", HTML
        )
    assert tls_sink.messages == []


# Kept connections


def subjects(sink):
    return [message["Subject"] for _, message in sink.messages]


def test_messages_one_after_another_share_one_connection(tls_sink, certificate):
    """STARTTLS and login once; after that, each message is one transaction."""
    mailer = Mailer(tls_settings(tls_sink, certificate))
    for n in range(3):
        mailer.send("olga@example.org", f"Subject {n}", "text", HTML)
    assert subjects(tls_sink) == ["Subject 0", "Subject 1", "Subject 2"]
    assert tls_sink.sessions == [{"tls": True, "login": "mailer"}] * 3
    assert len(tls_sink.connections) == 1


def test_a_connection_the_relay_dropped_while_idle_is_replaced():
    """The relay closes a connection idle for 0.3 s; the next message goes
    out once, over a new connection."""
    with SmtpSink(timeout=0.3) as sink:
        mailer = Mailer(settings(SMTP_PORT=str(sink.port)))
        mailer.send("olga@example.org", "Before", "text", HTML)
        time.sleep(0.8)
        mailer.send("olga@example.org", "After", "text", HTML)
        assert subjects(sink) == ["Before", "After"]
        assert len(sink.connections) == 2


def test_a_relay_restart_between_messages_loses_none(smtp_sink):
    mailer = Mailer(settings(SMTP_PORT=str(smtp_sink.port)))
    mailer.send("olga@example.org", "Before", "text", HTML)
    smtp_sink.__exit__()
    with SmtpSink(port=smtp_sink.port) as restarted:
        mailer.send("olga@example.org", "After", "text", HTML)
        assert subjects(restarted) == ["After"]


def test_messages_sent_side_by_side_each_have_a_connection_and_all_arrive(smtp_sink):
    mailer = Mailer(settings(SMTP_PORT=str(smtp_sink.port)))
    send = lambda n: mailer.send("olga@example.org", f"Subject {n}", "text", HTML)  # noqa: E731
    for _ in range(2):  # the second round reuses what the first kept
        list(eventlet.GreenPool(4).imap(send, range(8)))
    assert sorted(subjects(smtp_sink)) == sorted([f"Subject {n}" for n in range(8)] * 2)
    assert 2 <= len(smtp_sink.connections) <= 8


def test_a_refusal_on_a_kept_connection_is_not_sent_again(smtp_sink):
    """Only a closed connection is tried anew: a refused message is the
    caller's to retry later, after its backoff."""
    mailer = Mailer(settings(SMTP_PORT=str(smtp_sink.port)))
    mailer.send("olga@example.org", "Before", "text", HTML)
    smtp_sink.fail_with = "451 4.3.0 try again later"
    with pytest.raises(DeliveryError, match="451"):
        mailer.send("olga@example.org", "Refused", "text", HTML)
    assert smtp_sink.refusals == 1


def test_a_relay_slow_to_answer_quit_does_not_fail_a_sent_message(smtp_sink):
    """A connection let go after its message (more than are kept) says QUIT
    without waiting for the answer: the send is over once the message is."""
    smtp_sink.quit_delay = 5
    mailer = Mailer(settings(SMTP_PORT=str(smtp_sink.port)))
    mailer.KEEP_IDLE = 0
    with eventlet.Timeout(2, AssertionError("the send waited for the answer to QUIT")):
        mailer.send("olga@example.org", "Subject", "text", HTML)
    assert subjects(smtp_sink) == ["Subject"]
    wait_for(lambda: smtp_sink.quits == 1, what="the QUIT")


def test_closing_the_mailer_ends_its_kept_connections(smtp_sink):
    mailer = Mailer(settings(SMTP_PORT=str(smtp_sink.port)))
    mailer.send("olga@example.org", "Subject", "text", HTML)
    assert mailer.idle
    mailer.close()
    assert not mailer.idle
    wait_for(lambda: smtp_sink.quits == 1, what="the QUIT")


@pytest.mark.parametrize("refusal", ["451 4.3.0 try again later", "554 5.7.1 relay denied"])
def test_smtp_refusals_are_worth_another_try(smtp_sink, refusal):
    smtp_sink.fail_with = refusal
    with pytest.raises(DeliveryError, match=refusal[:3]) as failed:
        Mailer(settings(SMTP_PORT=str(smtp_sink.port))).send("olga@example.org", "S", "t", HTML)
    assert not isinstance(failed.value, PermanentDeliveryError)


def test_a_closed_smtp_port_is_worth_another_try():
    with pytest.raises(DeliveryError, match=r"ECONNREFUSED|refused") as failed:
        Mailer(settings(SMTP_PORT=str(free_port()))).send("olga@example.org", "S", "t", HTML)
    assert not isinstance(failed.value, PermanentDeliveryError)


# SMS


def http_sms(sink, **overrides):
    return sms_backend(settings(SMS_BACKEND="http", SMS_HTTP_URL=sink.url, **overrides))


def test_the_http_backend_posts_to_and_text(sms_sink):
    backend = http_sms(sms_sink)
    assert isinstance(backend, HttpSms)
    backend.send("+994501234567", "Направление REF-2026-000123 (жильё) принято.")
    assert sms_sink.received == [
        {"to": "+994501234567", "text": "Направление REF-2026-000123 (жильё) принято."}
    ]


@pytest.mark.parametrize(
    "status,outcome",
    [
        (200, None),
        (201, None),
        (204, None),
        (500, DeliveryError),
        (502, DeliveryError),
        (503, DeliveryError),
        (408, DeliveryError),
        (429, DeliveryError),
        (400, PermanentDeliveryError),
        (401, PermanentDeliveryError),
        (404, PermanentDeliveryError),
        (422, PermanentDeliveryError),
    ],
)
def test_what_each_provider_answer_means(sms_sink, status, outcome):
    sms_sink.status = status
    backend = http_sms(sms_sink)
    if outcome is None:
        backend.send("+994501234567", "text")
        return
    with pytest.raises(DeliveryError, match=str(status)) as failed:
        backend.send("+994501234567", "text")
    assert type(failed.value) is outcome


def test_a_slow_provider_times_out_and_is_worth_another_try(sms_sink):
    sms_sink.delay = 1.0
    with pytest.raises(DeliveryError) as failed:
        http_sms(sms_sink, NOTIFICATION_SEND_TIMEOUT_SECONDS="0.2").send("+994501234567", "text")
    assert "timed out" in str(failed.value).lower()
    assert not isinstance(failed.value, PermanentDeliveryError)


def test_an_unreachable_provider_is_worth_another_try():
    with HttpSink() as sink:
        url = sink.url  # a port that no longer listens once the sink is gone
    with pytest.raises(DeliveryError) as failed:
        sms_backend(settings(SMS_BACKEND="http", SMS_HTTP_URL=url)).send("+994501234567", "text")
    assert not isinstance(failed.value, PermanentDeliveryError)


def test_the_log_backend_writes_the_sms_to_the_log(caplog):
    backend = sms_backend(settings(SMS_BACKEND="log"))
    assert isinstance(backend, LogSms)
    with caplog.at_level(logging.INFO, logger="services.notifications.transports"):
        backend.send("+994501234567", "Yönləndirmə REF-2026-000123 qəbul edildi.")
    assert "SMS to +994501234567: Yönləndirmə REF-2026-000123 qəbul edildi." in caplog.messages


def test_a_provider_adapter_is_one_class(monkeypatch):
    class Carrier(SmsBackend):
        sent = []

        def send(self, to, text):
            self.sent.append((self.settings["SMS_HTTP_URL"], to, text))

    monkeypatch.setitem(SMS_BACKENDS, "carrier", Carrier)
    sms_backend(settings(SMS_BACKEND="carrier", SMS_HTTP_URL="https://carrier.example")).send("+9945", "hi")
    assert Carrier.sent == [("https://carrier.example", "+9945", "hi")]


@pytest.mark.parametrize(
    "overrides,problem",
    [
        ({"SMS_BACKEND": "pigeon"}, "SMS_BACKEND must be one of"),
        ({"SMS_BACKEND": "http", "SMS_HTTP_URL": ""}, "SMS_HTTP_URL"),
    ],
)
def test_a_wrong_sms_setting_stops_the_service_at_start(overrides, problem):
    with pytest.raises(ValueError, match=problem):
        sms_backend(settings(**overrides))
