"""Scheduled report emails through a real SMTP server (aiosmtpd): once per period, in
the subscriber's language, with the period's KPIs against the period before."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from parcours.analytics import reports
from parcours.analytics.models import ReportSubscription
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.settings import load_settings
from tests.analytics import kpi_data
from tests.orders.test_notifications import Inbox, body, inbox

__all__ = ["inbox"]


def test_the_last_complete_week_runs_monday_to_sunday_and_the_month_is_the_previous_one() -> None:
    wednesday = date(2026, 3, 18)
    assert reports.last_complete_period("weekly", wednesday) == reports.Period(
        date(2026, 3, 9), date(2026, 3, 15)
    )
    assert reports.last_complete_period("monthly", wednesday) == reports.Period(
        date(2026, 2, 1), date(2026, 2, 28)
    )
    march = reports.Period(date(2026, 3, 1), date(2026, 3, 31))
    assert march.previous("monthly") == reports.Period(date(2026, 2, 1), date(2026, 2, 28))


def test_a_subscription_needs_an_address_and_a_known_frequency(sqlite_db: Database) -> None:
    with sqlite_db.transaction() as session, pytest.raises(InvalidInput) as refused:
        reports.subscribe(
            session, "not-an-address", "daily", created_by="cli:operator", now=kpi_data.NOW
        )
    assert {e.parameter for e in refused.value.errors} == {"email", "frequency"}


def test_a_weekly_report_is_sent_once_per_week_in_the_subscribers_language(
    db: Database, inbox: tuple[Inbox, object]
) -> None:
    box, mailer = inbox
    kpi_data.build(db)
    clock = ManualClock(datetime(2026, 3, 4, 8, 0, tzinfo=UTC))  # a Wednesday
    with db.transaction() as session:
        reports.subscribe(
            session, "direction@example.com", "weekly", locale="fr",
            created_by="cli:operator", now=clock.now(),
        )  # fmt: skip
    settings = load_settings(timezone="Europe/Paris")
    assert reports.send_due_reports(db, clock, mailer, settings) == 0  # week of 2 March not over
    clock.advance(timedelta(days=4, hours=23))  # Monday 9 March, 8:00 in Paris
    assert reports.send_due_reports(db, clock, mailer, settings) == 1
    assert reports.send_due_reports(db, clock, mailer, settings) == 0  # not twice
    [message] = box.messages
    assert message["To"] == "direction@example.com"
    assert "2026-03-02" in message["Subject"]
    assert "2026-03-08" in message["Subject"]
    text = body(message, "plain")
    # Week of 2 March: O1 (70 €), O2 (10 €) and O3 (50 €): 130 € of merchandise.
    assert "130,00" in text
    assert "Ventes" in text
    html = body(message, "html")
    assert "<table" in html
    with db.transaction() as session:
        [stored] = session.scalars(select(ReportSubscription)).all()
        assert stored.last_period_start == date(2026, 3, 2)
