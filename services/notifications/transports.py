"""How messages leave: e-mail over SMTP, SMS through a small backend
interface (`log` or `http`), so a real provider's adapter is one class.

A sender returns when the message went out, raises `DeliveryError` when it
is worth trying again later, and `PermanentDeliveryError` when trying the
same message again cannot help.
"""

import collections
import logging
import select
import smtplib
import ssl
import time
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr

import requests

from shared import config

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A message did not go out; it is worth trying again later."""


class PermanentDeliveryError(DeliveryError):
    """A message was refused for good: trying it again cannot succeed."""


def send_timeout(settings):
    """Seconds a single send may take, all in (NOTIFICATION_SEND_TIMEOUT_SECONDS)."""
    return float(settings["NOTIFICATION_SEND_TIMEOUT_SECONDS"])


class Mailer:
    """E-mail over SMTP (smtplib): STARTTLS when SMTP_STARTTLS is on,
    verifying the server's certificate against the system's CAs or
    SMTP_CA_FILE; then login when SMTP_USERNAME is set. Every SMTP refusal
    (4xx or 5xx) is tried again: a relay that wants another login or is out
    of space recovers once an operator acts.

    Connections are kept open between messages (up to `KEEP_IDLE` of them,
    each for `IDLE_SECONDS` and `MESSAGES_PER_CONNECTION` messages), so that
    a message costs one SMTP transaction rather than a whole conversation
    (connect, EHLO, STARTTLS, login, QUIT). A kept connection is used only
    while nothing has arrived on it: a relay that closes an idle connection
    (its idle limit, a restart) says 421 or just closes, and either makes
    the socket readable. A message is never sent again at once: a failure
    once the relay may have taken it is the retry schedule's to handle."""

    KEEP_IDLE = 8  # as many as are sent side by side (dispatch.SIDE_BY_SIDE)
    IDLE_SECONDS = 30.0  # well under the usual relay's idle limit (Postfix: 300 s)
    MESSAGES_PER_CONNECTION = 100  # relays limit the messages of one connection

    def __init__(self, settings):
        self.host = settings["SMTP_HOST"]
        self.port = int(settings["SMTP_PORT"])
        self.sender = settings["SMTP_FROM"]
        self.starttls = config.flag(settings["SMTP_STARTTLS"])
        self.ca_file = settings["SMTP_CA_FILE"] or None
        self.username = settings["SMTP_USERNAME"] or None
        self.password = settings["SMTP_PASSWORD"] or None
        self.timeout = send_timeout(settings)
        self.idle = collections.deque()  # (connection, idle since, messages sent), last used on the right

    def message(self, to, subject, text, html):
        """The e-mail: plain text and HTML alternatives, From = SMTP_FROM.
        Built with the classic MIME classes: the newer EmailMessage on
        Python 3.11 folds a long non-ASCII subject into encoded words that
        lose the space between them ("mənzil təminatı" would arrive as
        "mənziltəminatı"); `Header` encodes it faithfully."""
        msg = MIMEMultipart("alternative")
        msg.attach(MIMEText(text, "plain", "utf-8"))
        msg.attach(MIMEText(html, "html", "utf-8"))
        msg["From"] = formataddr(parseaddr(self.sender), charset="utf-8")
        msg["To"] = to
        msg["Subject"] = Header(subject, "utf-8")
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or None
        msg["Message-ID"] = make_msgid(domain=domain)
        return msg

    def send(self, to, subject, text, html):
        message = self.message(to, subject, text, html)
        try:
            smtp, sent = self._take_idle() or (self._connect(), 0)
            self._send_on(smtp, sent, message)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {error}") from error

    def _connect(self):
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send_on(self, smtp, sent, message):
        """Send over `smtp`, then keep it for the next message; any failure
        (a timeout from outside too) closes it, since its state is unknown."""
        try:
            smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        self._keep(smtp, sent + 1)

    def _take_idle(self):
        while self.idle:
            smtp, since, sent = self.idle.pop()
            if time.monotonic() - since < self.IDLE_SECONDS and _quiet(smtp):
                return smtp, sent
            _drop(smtp)
        return None

    def _keep(self, smtp, sent):
        now = time.monotonic()
        while self.idle and now - self.idle[0][1] >= self.IDLE_SECONDS:  # the oldest, unused for long
            _drop(self.idle.popleft()[0])
        if sent >= self.MESSAGES_PER_CONNECTION or len(self.idle) >= self.KEEP_IDLE:
            _drop(smtp)
        else:
            self.idle.append((smtp, now, sent))

    def close(self):
        """Say goodbye on every kept connection (the service is stopping)."""
        while self.idle:
            _drop(self.idle.pop()[0])


def _quiet(smtp):
    """Whether nothing has arrived on idle connection `smtp`: no 421, no
    close. One poll of the socket, no round trip."""
    try:
        readable, _, _ = select.select([smtp.sock], [], [], 0)
    except (OSError, ValueError, TypeError):  # closed already
        return False
    return not readable


def _drop(smtp):
    """QUIT without waiting for the answer (a slow relay must not hold up a
    send whose message is out already), then close."""
    try:
        smtp.putcmd("quit")
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        smtp.close()


class SmsBackend:
    """An SMS provider's adapter: made from the settings, `send(to, text)`
    returns once the provider took the SMS. Add a class to `SMS_BACKENDS`
    to support another provider."""

    def __init__(self, settings):
        self.settings = settings

    def send(self, to, text):
        raise NotImplementedError


class LogSms(SmsBackend):
    """Writes each SMS to the service log: for development and demos."""

    def send(self, to, text):
        log.info("SMS to %s: %s", to, text)


class HttpSms(SmsBackend):
    """POSTs {"to", "text"} as JSON to SMS_HTTP_URL; a 2xx answer is delivery.

    A connection failure, a timeout, a 5xx, a 408 (the provider timed out)
    or a 429 (it is busy) is tried again later. Any other 4xx is permanent:
    the provider refuses this very request (a number or text it will not
    take, our credentials), so sending it again unchanged cannot succeed;
    the message is `failed` at once with the provider's answer in
    `last_error`, visible at GET /v1/notifications, and the retries are not
    spent on it.
    """

    RETRIED_CLIENT_ERRORS = (408, 429)

    def __init__(self, settings):
        super().__init__(settings)
        self.url = settings["SMS_HTTP_URL"]
        if not self.url:
            raise ValueError("SMS_BACKEND=http needs SMS_HTTP_URL")
        self.timeout = send_timeout(settings)

    def send(self, to, text):
        try:
            response = requests.post(self.url, json={"to": to, "text": text}, timeout=self.timeout)
        except requests.RequestException as error:
            raise DeliveryError(f"SMS provider: {error}") from error
        if 200 <= response.status_code < 300:
            return
        answer = response.text.strip()[:200]
        problem = f"SMS provider answered {response.status_code}" + (f": {answer}" if answer else "")
        if 400 <= response.status_code < 500 and response.status_code not in self.RETRIED_CLIENT_ERRORS:
            raise PermanentDeliveryError(problem)
        raise DeliveryError(problem)


SMS_BACKENDS = {"log": LogSms, "http": HttpSms}


def sms_backend(settings):
    backend = settings["SMS_BACKEND"]
    if backend not in SMS_BACKENDS:
        raise ValueError(f"SMS_BACKEND must be one of {sorted(SMS_BACKENDS)}, not {backend!r}")
    return SMS_BACKENDS[backend](settings)
