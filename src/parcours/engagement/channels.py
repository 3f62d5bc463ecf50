"""Where messages leave Parcours: the mailer for email, and one adapter per other
channel. SMS and push gateways are external boundaries: their defaults log the delivery
id (never the number, device or text) so a laptop install works without an account.
Webhooks are POSTed as signed JSON (the `Parcours-Signature` of core/webhooks)."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Protocol

import httpx

from parcours.core.errors import ServiceUnavailable
from parcours.core.mail import (
    Mailer,
    MailUnavailable,
    OutgoingEmail,
    SmtpMailer,
    build_message,
    mailer_for,
)
from parcours.core.settings import Settings
from parcours.core.webhooks import signature_header

log = logging.getLogger("parcours.engagement")


class SmsGateway(Protocol):
    def send_sms(self, delivery_id: uuid.UUID, to: str, text: str) -> str:
        """Hand the text to the operator; returns the provider's message id."""
        ...


class PushGateway(Protocol):
    def send_push(
        self, delivery_id: uuid.UUID, device: str, title: str, body: str, deep_link: str | None
    ) -> str:
        """Hand the notification to the push service; returns its message id."""
        ...


class WebhookPoster(Protocol):
    def post(self, delivery_id: uuid.UUID, url: str, body: bytes, secret: str) -> str:
        """POST the signed JSON body; returns a reference of the call."""
        ...


class LoggingSmsGateway:
    """The default SMS gateway: logs that a message would leave (delivery id only)."""

    def send_sms(self, delivery_id: uuid.UUID, to: str, text: str) -> str:
        log.info("sms handed to the logging gateway", extra={"delivery_id": str(delivery_id)})
        return f"log-sms-{delivery_id}"


class LoggingPushGateway:
    """The default push gateway: logs that a notification would leave (delivery id only)."""

    def send_push(
        self, delivery_id: uuid.UUID, device: str, title: str, body: str, deep_link: str | None
    ) -> str:
        log.info("push handed to the logging gateway", extra={"delivery_id": str(delivery_id)})
        return f"log-push-{delivery_id}"


class WebhookUnavailable(ServiceUnavailable):
    """The receiver did not answer 2xx: nothing was delivered."""


@dataclass(frozen=True)
class HttpWebhookPoster:
    """POSTs with httpx, signed like every Parcours webhook (`Parcours-Signature`)."""

    timeout_s: float = 5.0

    def post(self, delivery_id: uuid.UUID, url: str, body: bytes, secret: str) -> str:
        headers = {
            "Content-Type": "application/json",
            "Parcours-Signature": signature_header(secret, body, int(time.time())),
            "Parcours-Delivery": str(delivery_id),
        }
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise WebhookUnavailable(f"The webhook receiver failed: {type(exc).__name__}.") from exc
        if not 200 <= response.status_code < 300:
            raise WebhookUnavailable(f"The webhook receiver answered {response.status_code}.")
        return f"http-{response.status_code}-{delivery_id}"


@dataclass(frozen=True)
class Outlets:
    """Everything a send needs from outside: the adapters and the public address that
    tracking and unsubscribe links point to."""

    mailer: Mailer
    public_url: str
    sms: SmsGateway
    push: PushGateway
    webhooks: WebhookPoster
    timezone: str = "Europe/Paris"  # for a profile without a valid zone

    @classmethod
    def from_settings(cls, settings: Settings) -> Outlets:
        return cls(
            mailer_for(settings),
            settings.resolved_public_url,
            LoggingSmsGateway(),
            LoggingPushGateway(),
            HttpWebhookPoster(),
            settings.timezone,
        )


class BatchSmtpMailer:
    """Sends a batch of messages over one SMTP connection (as `SmtpMailer` would, one by
    one). A failure closes the connection and raises `MailUnavailable` for that message
    only; the next message opens a new connection. Never retried here, so a message the
    server may have taken is never sent twice."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self._smtp: smtplib.SMTP | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            m = self.mailer
            smtp = smtplib.SMTP(m.host, m.port, timeout=m.timeout_s)
            if m.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if m.username:
                smtp.login(m.username, m.password)
            self._smtp = smtp
        return self._smtp

    def send_email(self, message: OutgoingEmail) -> str:
        email = build_message(message, self.mailer.sender)
        try:
            self._connection().send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise MailUnavailable(
                f"The mail server {self.mailer.host}:{self.mailer.port} did not take the "
                f"message ({type(exc).__name__}); nothing was sent, try again later."
            ) from exc
        return str(email["Message-ID"])

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


@contextmanager
def batch_outlets(outlets: Outlets) -> Iterator[Outlets]:
    """The same outlets with an SMTP mailer that keeps one connection for the batch."""
    if not isinstance(outlets.mailer, SmtpMailer):
        yield outlets
        return
    batch = BatchSmtpMailer(outlets.mailer)
    try:
        yield replace(outlets, mailer=batch)
    finally:
        batch.close()
