"""The contact policy: global frequency caps and quiet hours per channel.

A cap counts the marketing messages a person was sent on a channel over the last
`period_days` days, across every campaign and journey; transactional messages neither
count nor wait. Quiet hours are read in the customer's own time zone; a marketing
message that falls in them is deferred to the next allowed time, never dropped.

Until someone edits a channel's policy, `DEFAULT_POLICIES` applies: 3 marketing
emails per 7 days; SMS 2 per 7 days and never 21:00-08:00 nor on Sundays (the French
professional rules for commercial SMS); push 5 per 7 days, not 21:00-08:00.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.core.errors import ONE_OF, FieldError, Refused, refusal
from parcours.engagement.models import ContactPolicy
from parcours.engagement.templates_service import CHANNELS

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# What setting a policy refuses, as `message % values` for the console.
LOCAL_TIME = "write a local time as HH:MM"
BETWEEN = "must be between %(low)s and %(high)s"
DAYS_BETWEEN = "must be between %(low)s and %(high)s days"
BOTH_ENDS = "give both ends of the quiet hours"
A_DAY_LEFT = "leave at least one day to send on"
NOT_VALID = "The contact policy is not valid: see below."
MESSAGES = (LOCAL_TIME, BETWEEN, DAYS_BETWEEN, BOTH_ENDS, A_DAY_LEFT, NOT_VALID, ONE_OF)


@dataclass(frozen=True)
class Policy:
    """One channel's rules; `max_messages` None means no cap, empty quiet hours none."""

    channel: str
    max_messages: int | None
    period_days: int
    quiet_start: str | None = None
    quiet_end: str | None = None
    quiet_days: tuple[str, ...] = ()
    customised: bool = False

    def next_allowed(self, local: datetime) -> datetime | None:
        """None when `local` (aware, in the customer's zone) is outside quiet hours, else
        the first local time after it that is not quiet."""
        if not self._quiet(local):
            return None
        candidate = local
        for _ in range(32):
            if WEEKDAYS[candidate.weekday()] in self.quiet_days:
                nxt = candidate.date() + timedelta(days=1)
                candidate = datetime.combine(nxt, time(0, 0), tzinfo=local.tzinfo)
            elif self._in_window(candidate.time()):
                candidate = self._window_end(candidate)
            else:
                return candidate
        return candidate

    def _quiet(self, local: datetime) -> bool:
        return WEEKDAYS[local.weekday()] in self.quiet_days or self._in_window(local.time())

    def _bounds(self) -> tuple[time, time] | None:
        if not self.quiet_start or not self.quiet_end:
            return None
        return time.fromisoformat(self.quiet_start), time.fromisoformat(self.quiet_end)

    def _in_window(self, at: time) -> bool:
        bounds = self._bounds()
        if bounds is None:
            return False
        start, end = bounds
        at = at.replace(tzinfo=None)
        if start <= end:
            return start <= at < end
        return at >= start or at < end  # over midnight

    def _window_end(self, local: datetime) -> datetime:
        bounds = self._bounds()
        assert bounds is not None
        start, end = bounds
        day: date = local.date()
        if start > end and local.time().replace(tzinfo=None) >= start:
            day += timedelta(days=1)
        return datetime.combine(day, end, tzinfo=local.tzinfo)


DEFAULT_POLICIES: dict[str, Policy] = {
    "email": Policy("email", 3, 7),
    "sms": Policy("sms", 2, 7, "21:00", "08:00", ("sun",)),
    "push": Policy("push", 5, 7, "21:00", "08:00"),
    "webhook": Policy("webhook", None, 7),
}


def zone_of(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def policies(session: Session) -> dict[str, Policy]:
    """The policy in force on every channel (edited ones, else the defaults)."""
    out = dict(DEFAULT_POLICIES)
    for row in session.scalars(select(ContactPolicy)):
        out[row.channel] = Policy(
            row.channel,
            row.max_messages,
            row.period_days,
            row.quiet_start,
            row.quiet_end,
            tuple(row.quiet_days or ()),
            customised=True,
        )
    return out


def _check(policy: Policy) -> list[FieldError]:
    errors = []
    if policy.channel not in CHANNELS:
        errors.append(refusal(ONE_OF, pointer="#/channel", choices=", ".join(CHANNELS)))
    if policy.max_messages is not None and not 0 <= policy.max_messages <= 1000:
        errors.append(refusal(BETWEEN, pointer="#/max_messages", low=0, high=1000))
    if not 1 <= policy.period_days <= 365:
        errors.append(refusal(DAYS_BETWEEN, pointer="#/period_days", low=1, high=365))
    for name in ("quiet_start", "quiet_end"):
        value = getattr(policy, name)
        if value is not None and not HH_MM.match(value):
            errors.append(refusal(LOCAL_TIME, pointer=f"#/{name}"))
    if (policy.quiet_start is None) != (policy.quiet_end is None):
        errors.append(refusal(BOTH_ENDS, pointer="#/quiet_end"))
    days = ", ".join(WEEKDAYS)
    errors.extend(
        refusal(ONE_OF, pointer=f"#/quiet_days/{i}", choices=days)
        for i, day in enumerate(policy.quiet_days)
        if day not in WEEKDAYS
    )
    if len(set(policy.quiet_days)) == len(WEEKDAYS):
        errors.append(refusal(A_DAY_LEFT, pointer="#/quiet_days"))
    return errors


def set_policy(session: Session, now: datetime, by: str, policy: Policy) -> Policy:
    """Replace a channel's policy (checked: pointers name each bad field)."""
    errors = _check(policy)
    if errors:
        raise Refused(f"The contact policy is not valid: {errors[0].detail}.", errors, NOT_VALID)
    row = session.get(ContactPolicy, policy.channel)
    if row is None:
        row = ContactPolicy(channel=policy.channel)
        session.add(row)
    row.max_messages = policy.max_messages
    row.period_days = policy.period_days
    row.quiet_start = policy.quiet_start
    row.quiet_end = policy.quiet_end
    row.quiet_days = list(dict.fromkeys(policy.quiet_days))
    row.updated_at = now
    row.updated_by = by
    session.flush()
    return policies(session)[policy.channel]
