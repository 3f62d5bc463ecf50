"""Scheduled report emails: a KPI summary of the last complete week or month, compared
with the one before, sent to the people who subscribed.

The worker checks every hour; a subscription is due once the period it has not yet
received is over (in the retailer's time zone). Each subscription remembers the last
period sent, so a report goes out once per period even if the worker restarts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.analytics.dashboard import Filters, console_engine, format_value
from parcours.analytics.engines import Engine
from parcours.analytics.metrics import METRICS, kpis
from parcours.analytics.models import ReportSubscription
from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.errors import FieldError, InvalidInput, NotFound
from parcours.core.events import PeriodicJob
from parcours.core.i18n import translations
from parcours.core.mail import Mailer, OutgoingEmail
from parcours.core.settings import Settings, get_settings

FREQUENCIES = ("weekly", "monthly")
REPORT_METRICS = (
    "sales",
    "orders",
    "average_basket",
    "conversion_rate",
    "returns_rate",
    "footfall",
    "store_conversion",
)
JOB_NAME = "analytics.report_emails"
TOP_STORES = 5


@dataclass(frozen=True)
class Period:
    """Local dates, both included."""

    start: date
    end: date

    def previous(self, frequency: str) -> Period:
        if frequency == "weekly":
            return Period(self.start - timedelta(days=7), self.start - timedelta(days=1))
        end = self.start - timedelta(days=1)
        return Period(end.replace(day=1), end)


def last_complete_period(frequency: str, today: date) -> Period:
    """The last week (Monday to Sunday) or calendar month that is over by `today`."""
    if frequency == "weekly":
        monday = today - timedelta(days=today.weekday())
        return Period(monday - timedelta(days=7), monday - timedelta(days=1))
    end = today.replace(day=1) - timedelta(days=1)
    return Period(end.replace(day=1), end)


def subscribe(
    session: Session,
    email: str,
    frequency: str,
    *,
    locale: str = "fr",
    channel: str = "",
    store: str = "",
    created_by: str,
    now: datetime,
) -> ReportSubscription:
    """Send `email` the KPI report every week or month (optionally for one channel or
    store). The first report covers the period that ends next, not past ones."""
    errors = []
    if "@" not in email.strip(" @"):
        errors.append(FieldError("must be an email address", parameter="email"))
    if frequency not in FREQUENCIES:
        errors.append(FieldError(f"must be one of {', '.join(FREQUENCIES)}", parameter="frequency"))
    if locale not in ("fr", "en"):
        errors.append(FieldError("must be fr or en", parameter="locale"))
    if errors:
        raise InvalidInput(f"Cannot subscribe to the report: {errors[0].detail}.", errors)
    today = now.astimezone(ZoneInfo(get_settings().timezone)).date()
    subscription = ReportSubscription(
        id=uuid.uuid4(),
        email=email.strip(),
        frequency=frequency,
        locale=locale,
        channel=channel,
        store=store,
        created_by=created_by,
        created_at=now,
        last_period_start=last_complete_period(frequency, today).start,
    )
    session.add(subscription)
    session.flush()
    return subscription


def unsubscribe(session: Session, subscription_id: uuid.UUID) -> None:
    """Stop a subscription (NotFound when there is none with this id)."""
    subscription = session.get(ReportSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"No report subscription {subscription_id}.")
    session.delete(subscription)


def subscriptions(session: Session) -> list[ReportSubscription]:
    return list(session.scalars(select(ReportSubscription).order_by(ReportSubscription.email)))


def _figures(engine: Engine, filters: Filters) -> dict[str, Any]:
    query = filters.query()
    rows = kpis(engine, filters.applicable(REPORT_METRICS), query)
    return rows[0] if rows else {}


def _change(now: Any, before: Any) -> float | None:
    if now is None or not before:
        return None
    return float(now) / float(before) - 1.0


def compose_report(
    engine: Engine, subscription: ReportSubscription, period: Period
) -> OutgoingEmail:
    """The report email for one period, in the subscriber's language."""
    locale = subscription.locale
    before = period.previous(subscription.frequency)
    common = {"grain": "day", "channel": subscription.channel, "store": subscription.store}
    filters = Filters(start=period.start, end=period.end, **common)
    current = _figures(engine, filters)
    previous = _figures(engine, Filters(start=before.start, end=before.end, **common))
    rows = [
        {
            "name": name,
            "value": format_value(current.get(name), METRICS[name].unit, locale),
            "change": _change(current.get(name), previous.get(name)),
        }
        for name in REPORT_METRICS
        if name in current
    ]
    stores = []
    if not subscription.store:
        by_store = kpis(engine, ["sales", "orders"], filters.query("store"))
        ranked = sorted(by_store, key=lambda r: r.get("sales") or 0, reverse=True)
        stores = [
            {"store": r["store"], "sales": format_value(r.get("sales"), "cents", locale)}
            for r in ranked[:TOP_STORES]
            if r.get("store")
        ]
    gettext = translations(locale).gettext
    env = _environment(locale)
    context = {
        "rows": rows,
        "stores": stores,
        "period": period,
        "subscription": subscription,
        "percent": lambda value: format_value(value, "fraction", locale),
    }
    subject = gettext("Parcours report %(start)s – %(end)s") % {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
    }
    return OutgoingEmail(
        to=subscription.email,
        subject=subject,
        text=env.get_template("report_email/report.txt").render(context),
        html=env.get_template("report_email/report.html").render(context),
    )


def _environment(locale: str) -> Environment:
    env = Environment(
        loader=PackageLoader("parcours.analytics", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def send_due_reports(database: Database, clock: Clock, mailer: Mailer, settings: Settings) -> int:
    """Send every report whose next period is over; returns how many were sent. A report
    that fails to send stays due and is tried again at the next run."""
    today = clock.now().astimezone(ZoneInfo(settings.timezone)).date()
    with database.transaction() as session:
        periods = [(s, last_complete_period(s.frequency, today)) for s in subscriptions(session)]
        due = [(s.id, period) for s, period in periods if period.start > s.last_period_start]
    if not due:
        return 0
    sent = 0
    with console_engine(database, settings) as engine:
        for subscription_id, period in due:
            with database.transaction() as session:
                subscription = session.get(ReportSubscription, subscription_id)
                if subscription is None:
                    continue
                mailer.send_email(compose_report(engine, subscription, period))
                subscription.last_period_start = period.start
                subscription.last_sent_at = clock.now().astimezone(UTC)
                sent += 1
    return sent


def report_emails_job(mailer: Mailer | None = None) -> PeriodicJob:
    """The worker's hourly check for due report emails (the installation's mailer by
    default: SMTP, or .eml files under DATA_DIR/mail)."""

    def run(database: Database, clock: Clock) -> int:
        from parcours.core.mail import mailer_for

        settings = get_settings()
        return send_due_reports(database, clock, mailer or mailer_for(settings), settings)

    return PeriodicJob(JOB_NAME, 3600.0, run)
