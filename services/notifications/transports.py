"""How messages leave: e-mail over SMTP, SMS through a small backend
interface (`log` or `http`), so a real provider's adapter is one class."""
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import requests

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


class DeliveryError(Exception):
    """A message did not go out; it is worth trying again later."""


class Mailer:
    def __init__(self, settings):
        self.host = settings["SMTP_HOST"]
        self.port = int(settings["SMTP_PORT"])
        self.sender = settings["SMTP_FROM"]
        self.starttls = str(settings.get("SMTP_STARTTLS", "")).lower() in ("1", "true", "yes")
        self.username = settings.get("SMTP_USERNAME") or None
        self.password = settings.get("SMTP_PASSWORD") or None

    def message(self, to, subject, text, html):
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or None
        msg["Message-ID"] = make_msgid(domain=domain)
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        return msg

    def send(self, to, subject, text, html):
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(self.message(to, subject, text, html))
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {error}") from error


class LogSms:
    """Writes each SMS to the service log: for development and demos."""

    def send(self, to, text):
        log.info("SMS to %s: %s", to, text)


class HttpSms:
    """POSTs {"to", "text"} as JSON to SMS_HTTP_URL; a 2xx answer is delivery."""

    def __init__(self, url):
        self.url = url

    def send(self, to, text):
        try:
            response = requests.post(self.url, json={"to": to, "text": text}, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise DeliveryError(f"SMS provider: {error}") from error
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"SMS provider answered {response.status_code}")


def sms_backend(settings):
    backend = settings["SMS_BACKEND"]
    if backend == "log":
        return LogSms()
    if backend == "http":
        if not settings["SMS_HTTP_URL"]:
            raise ValueError("SMS_BACKEND=http needs SMS_HTTP_URL")
        return HttpSms(settings["SMS_HTTP_URL"])
    raise ValueError(f"SMS_BACKEND must be log or http, not {backend!r}")
