"""Outgoing email: one adapter interface, an SMTP sender and a file default.

`mailer_for(settings)` gives the SMTP sender when `PARCOURS_SMTP_HOST` is set, and
otherwise one that writes each message as an `.eml` file under `DATA_DIR/mail/` (open
it with any mail client): a working default for a laptop, with nothing lost. Every
message goes out as text, plus HTML when given (multipart/alternative), and can carry
the `List-Unsubscribe` and `List-Unsubscribe-Post` headers of RFC 2369 and RFC 8058.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from parcours.core.errors import InvalidInput, ServiceUnavailable
from parcours.core.ids import new_id
from parcours.core.settings import Settings

ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class OutgoingEmail:
    """One message to one recipient. `unsubscribe_url` adds `List-Unsubscribe` (and,
    with `one_click`, `List-Unsubscribe-Post: List-Unsubscribe=One-Click`)."""

    to: str
    subject: str
    text: str
    html: str | None = None
    sender: str | None = None  # default: the mailer's (PARCOURS_SMTP_FROM)
    reply_to: str | None = None
    date: datetime | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    one_click: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    def send_email(self, message: OutgoingEmail) -> str:
        """Send (or store) the message; returns its Message-ID."""
        ...


class MailUnavailable(ServiceUnavailable):
    """The mail server refused or could not be reached: nothing was sent."""


def build_message(message: OutgoingEmail, default_sender: str) -> EmailMessage:
    """The MIME message: text part, HTML alternative, unsubscribe headers."""
    sender = message.sender or default_sender
    for label, address in (("recipient", message.to), ("sender", sender)):
        if "@" not in parseaddr(address)[1] or "\n" in address or "\r" in address:
            raise InvalidInput(f"The {label} is not an email address.")
    try:
        return _assemble(message, sender)
    except ValueError as exc:  # a header with a line break: refused, never injected
        raise InvalidInput(f"The message cannot be sent as it is: {exc}") from None


def _assemble(message: OutgoingEmail, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    email["Message-ID"] = make_msgid(domain=domain)
    if message.date is not None:
        email["Date"] = format_datetime(message.date)
    if message.reply_to:
        email["Reply-To"] = message.reply_to
    targets = [
        f"<{target}>"
        for target in (message.unsubscribe_url, message.unsubscribe_mailto)
        if target is not None
    ]
    if targets:
        email["List-Unsubscribe"] = ", ".join(targets)
        if message.unsubscribe_url and message.one_click:
            email["List-Unsubscribe-Post"] = ONE_CLICK
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email


@dataclass(frozen=True)
class SmtpMailer:
    """Sends through an SMTP server (stdlib `smtplib`), with STARTTLS and login if set."""

    host: str
    port: int
    sender: str
    username: str = ""
    password: str = ""
    starttls: bool = True
    timeout_s: float = 30.0

    def send_email(self, message: OutgoingEmail) -> str:
        email = build_message(message, self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailUnavailable(
                f"The mail server {self.host}:{self.port} did not take the message "
                f"({type(exc).__name__}); nothing was sent, try again later."
            ) from exc
        return str(email["Message-ID"])


@dataclass(frozen=True)
class FileMailer:
    """Writes each message to `directory/<id>.eml` instead of sending it."""

    directory: Path
    sender: str

    def send_email(self, message: OutgoingEmail) -> str:
        email = build_message(message, self.sender)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{new_id()}.eml"
        target.write_bytes(email.as_bytes())
        return str(email["Message-ID"])


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when `PARCOURS_SMTP_HOST` is set, else `.eml` files in `DATA_DIR/mail/`."""
    if settings.smtp_host:
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            starttls=settings.smtp_starttls,
        )
    return FileMailer(settings.data_dir / "mail", settings.smtp_from)
