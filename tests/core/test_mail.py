"""The email adapter: SMTP against a real aiosmtpd server, and the .eml file default."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from parcours.core.errors import InvalidInput
from parcours.core.mail import (
    FileMailer,
    MailUnavailable,
    OutgoingEmail,
    SmtpMailer,
    mailer_for,
)
from parcours.core.settings import load_settings
from tests.builders import utc

MESSAGE = OutgoingEmail(
    to="lea.martin@example.com",
    subject="Confirmez votre inscription",
    text="Bonjour Léa,\n\nCliquez ici.\n",
    html="<p>Bonjour Léa, <a href='https://shop.example/x'>cliquez ici</a>.</p>",
    date=utc(2026, 3, 14, 9, 30),
)


class Inbox:
    """An aiosmtpd handler keeping what it received."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"shop", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_smtp_sends_a_multipart_message_with_text_and_html(
    smtp_server: tuple[Inbox, int],
) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, "Maison Lavande <news@lavande.example>", starttls=False)
    message_id = mailer.send_email(MESSAGE)
    [(sender, recipients, received)] = inbox.messages
    assert sender == "news@lavande.example"
    assert recipients == ["lea.martin@example.com"]
    assert received["Message-ID"] == message_id
    assert received["Subject"] == "Confirmez votre inscription"
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert text is not None
    assert "Bonjour Léa" in text.get_content()
    assert html is not None
    assert "cliquez ici" in html.get_content()


def test_smtp_logs_in_when_a_user_name_is_set(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, "news@lavande.example", "shop", "s3cret", starttls=False)
    mailer.send_email(MESSAGE)
    assert len(inbox.messages) == 1
    wrong = SmtpMailer("127.0.0.1", port, "news@lavande.example", "shop", "nope", starttls=False)
    with pytest.raises(MailUnavailable, match="did not take the message"):
        wrong.send_email(MESSAGE)
    assert len(inbox.messages) == 1


def test_starttls_is_required_when_asked_for(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, "news@lavande.example", starttls=True)
    with pytest.raises(MailUnavailable):
        mailer.send_email(MESSAGE)
    assert inbox.messages == []


def test_an_unreachable_server_is_a_503_that_says_nothing_was_sent() -> None:
    mailer = SmtpMailer("127.0.0.1", _free_port(), "news@lavande.example", starttls=False)
    with pytest.raises(MailUnavailable, match="nothing was sent") as caught:
        mailer.send_email(MESSAGE)
    assert caught.value.status == 503


def test_one_click_unsubscribe_headers_follow_rfc_8058(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, "news@lavande.example", starttls=False)
    mailer.send_email(
        OutgoingEmail(
            to="lea.martin@example.com",
            subject="Les soldes",
            text="-50 %",
            unsubscribe_url="https://shop.example/consent/unsubscribe/abc",
            unsubscribe_mailto="mailto:unsubscribe@lavande.example?subject=abc",
        )
    )
    received = inbox.messages[0][2]
    assert received["List-Unsubscribe"] == (
        "<https://shop.example/consent/unsubscribe/abc>, "
        "<mailto:unsubscribe@lavande.example?subject=abc>"
    )
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_without_an_smtp_host_messages_are_written_as_eml_files(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", smtp_from="shop@lavande.example")
    mailer = mailer_for(settings)
    assert isinstance(mailer, FileMailer)
    message_id = mailer.send_email(MESSAGE)
    [file] = (tmp_path / "data" / "mail").glob("*.eml")
    parsed = email.message_from_bytes(file.read_bytes(), policy=default_policy)
    assert parsed["Message-ID"] == message_id
    assert parsed["From"] == "shop@lavande.example"
    assert parsed["Date"] == "Sat, 14 Mar 2026 09:30:00 +0000"


def test_with_an_smtp_host_the_smtp_adapter_is_used() -> None:
    settings = load_settings(smtp_host="mail.example", smtp_port=2525, smtp_starttls=False)
    mailer = mailer_for(settings)
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.starttls) == ("mail.example", 2525, False)


@pytest.mark.parametrize(
    "message",
    [
        OutgoingEmail(to="not an address", subject="x", text="x"),
        OutgoingEmail(to="lea@example.com\nBcc: all@example.com", subject="x", text="x"),
        OutgoingEmail(to="lea@example.com", subject="x\nBcc: all@example.com", text="x"),
    ],
)
def test_bad_addresses_and_header_injections_are_refused(
    tmp_path: Path, message: OutgoingEmail
) -> None:
    with pytest.raises(InvalidInput):
        FileMailer(tmp_path, "shop@lavande.example").send_email(message)
    assert list(tmp_path.iterdir()) == []
