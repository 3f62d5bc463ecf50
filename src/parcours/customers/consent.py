"""Consent per purpose and channel: decisions with proof, double opt-in, unsubscribe,
and the one rule every sender obeys (`can_contact`).

Decisions are append-only: each is a row of `consents` with its source, time, the
version of the wording the person saw and the evidence (a hash of the form text, the
IP, the confirmation that granted it...). The latest decision per (profile, purpose,
channel) is in force; without any, nobody may be contacted (opt-in, as French law
requires for electronic marketing, applied here to every purpose and channel).

Granting marketing by email takes a double opt-in: the grant is held as a
`ConsentConfirmation` and a signed, expiring link is mailed to the address; the consent
row is written when the person confirms. Every marketing message carries a one-click
unsubscribe link (RFC 8058) signed per (profile, purpose, channel).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import ColumnElement, CursorResult, and_, delete, or_, select
from sqlalchemy.orm import Session, aliased

from parcours.core import audit, signing
from parcours.core.audit import Actor
from parcours.core.db import bulk_insert
from parcours.core.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    SaidConflict,
    SaidNotFound,
)
from parcours.core.i18n import SUPPORTED_LOCALES, translations
from parcours.core.ids import new_id
from parcours.core.mail import Mailer, OutgoingEmail, mailer_for
from parcours.core.settings import Settings
from parcours.customers import identity
from parcours.customers.models import Consent, ConsentConfirmation, Customer
from parcours.customers.service import follow_merges

PURPOSES = ("marketing", "analytics", "personalisation", "profiling")
CHANNELS = ("email", "sms", "push", "phone", "post")
# Grants that wait for the person to confirm from their mailbox.
DOUBLE_OPT_IN = frozenset({("marketing", "email")})

CONFIRM_SIGNING = "consent-confirmation"
# What the confirmation page says, in the reader's language (`said()`).
NO_REQUEST = "This confirmation link no longer matches a request: ask for a new one."
CONFIRMED_ONCE = "This subscription was already confirmed: the link works only once."
MESSAGES = (NO_REQUEST, CONFIRMED_ONCE)
UNSUBSCRIBE_SIGNING = "unsubscribe"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EVIDENCE_KEYS = 20
_EVIDENCE_VALUE = 500

# Reasons of a `Decision`, stable codes for callers and logs.
GRANTED = "granted"
WITHDRAWN = "withdrawn"
NO_CONSENT = "no_consent"
ERASED = "erased"
UNKNOWN_PROFILE = "unknown_profile"


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class ConsentInput:
    """One decision to record. `form_text` (the wording shown) is stored as its SHA-256
    only; `evidence` holds short facts (ip, user_agent, page_url...); `email` is the
    address a double opt-in goes to (default: the profile's)."""

    purpose: str
    channel: str
    granted: bool
    source: str
    wording_version: str | None = None
    proof: str | None = None
    form_text: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    email: str | None = None


@dataclass(frozen=True)
class ConsentRecord:
    """A recorded decision."""

    id: uuid.UUID
    purpose: str
    channel: str
    granted: bool
    at: datetime
    source: str
    wording_version: str | None
    proof: str | None
    evidence: dict[str, Any]


@dataclass(frozen=True)
class PendingConfirmation:
    """A double opt-in waiting for the person."""

    id: uuid.UUID
    purpose: str
    channel: str
    email: str
    requested_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class ConsentOutcome:
    recorded: list[ConsentRecord]
    pending: list[PendingConfirmation]


@dataclass(frozen=True)
class ConsentState:
    """A profile's consents: the decision in force per (purpose, channel) (None when
    there is none), the whole history (newest first) and the pending confirmations."""

    profile_id: uuid.UUID
    current: dict[tuple[str, str], ConsentRecord | None]
    history: list[ConsentRecord]
    pending: list[PendingConfirmation]
    erased: bool


@dataclass(frozen=True)
class Decision:
    """May this profile be contacted for this purpose on this channel, and why."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class DoubleOptIn:
    """How confirmation emails go out: the mailer, the public address of the links, how
    long a link stays valid and the zone its expiry is written in."""

    mailer: Mailer
    public_url: str
    valid_for: timedelta
    timezone: str = "Europe/Paris"

    @classmethod
    def from_settings(cls, settings: Settings) -> DoubleOptIn:
        return cls(
            mailer_for(settings),
            settings.resolved_public_url,
            timedelta(hours=settings.double_opt_in_hours),
            settings.timezone,
        )


# ------------------------------------------------------------------ validation


def usable_email(value: str | None) -> str | None:
    """The normalised address if it can receive mail, else None."""
    if value is None:
        return None
    normal = identity.normalise("email", value)
    return normal if normal is not None and _EMAIL.match(normal) else None


def check_purpose_and_channel(purpose: str, channel: str, where: str = "#") -> list[FieldError]:
    """Pointers at an unknown purpose or channel (empty when both are known)."""
    errors = []
    if purpose not in PURPOSES:
        errors.append(
            FieldError(
                f"unknown purpose {purpose!r}; known: {', '.join(PURPOSES)}",
                pointer=f"{where}/purpose",
            )
        )
    if channel not in CHANNELS:
        errors.append(
            FieldError(
                f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}",
                pointer=f"{where}/channel",
            )
        )
    return errors


def _check_evidence(evidence: Mapping[str, Any], where: str) -> list[FieldError]:
    if len(evidence) > _EVIDENCE_KEYS:
        return [FieldError(f"at most {_EVIDENCE_KEYS} facts", pointer=f"{where}/evidence")]
    return [
        FieldError(f"at most {_EVIDENCE_VALUE} characters", pointer=f"{where}/evidence/{key}")
        for key, value in evidence.items()
        if len(str(value)) > _EVIDENCE_VALUE
    ]


def _check_input(index: int, item: ConsentInput) -> list[FieldError]:
    where = f"#/consents/{index}"
    errors = check_purpose_and_channel(item.purpose, item.channel, where)
    if not item.source.strip():
        errors.append(FieldError("say where the decision was taken", pointer=f"{where}/source"))
    if item.email is not None and usable_email(item.email) is None:
        errors.append(FieldError("is not an email address", pointer=f"{where}/email"))
    return errors + _check_evidence(item.evidence, where)


def _evidence(item: ConsentInput) -> dict[str, Any]:
    facts = {key: str(value) for key, value in item.evidence.items() if value is not None}
    if item.form_text:
        facts["form_text_sha256"] = hashlib.sha256(item.form_text.encode()).hexdigest()
    return facts


# ------------------------------------------------------------------ reading


def _record(row: Consent) -> ConsentRecord:
    return ConsentRecord(
        row.id,
        row.purpose,
        row.channel,
        row.granted,
        row.at,
        row.source,
        row.wording_version,
        row.proof,
        dict(row.evidence or {}),
    )


def _pending(row: ConsentConfirmation) -> PendingConfirmation:
    return PendingConfirmation(
        row.id,
        row.purpose,
        row.channel,
        row.email,
        row.requested_at,
        row.expires_at,
        row.confirmed_at,
    )


def get_profile(session: Session, profile_id: uuid.UUID) -> Customer:
    """The live profile a (possibly merged-away) id stands for, or `NotFound`."""
    live = identity.canonical_profile_id(session, profile_id)
    customer = session.get(Customer, live) if live is not None else None
    if customer is None:
        raise NotFound(f"No customer has the id {profile_id}.")
    return customer


def person_ids(session: Session, profile_id: uuid.UUID) -> list[uuid.UUID]:
    """The live profile and every profile merged into it: one person's rows. Decisions
    stay on the profile they were taken on, so an unmerge gives each its own back."""
    return [profile_id, *identity.merged_profile_ids(session, profile_id)]


def _live_profile(session: Session, profile_id: uuid.UUID) -> Customer:
    customer = get_profile(session, profile_id)
    if customer.erased_at is not None:
        raise Conflict(
            f"Customer {profile_id} was erased: record a new consent through a new double "
            "opt-in (the person's address), not on the erased profile."
        )
    return customer


def consent_state(
    session: Session, now: datetime, actor: Actor, profile_id: uuid.UUID
) -> ConsentState:
    """A person's consents, whichever of their merged profiles took them (audited)."""
    customer = get_profile(session, profile_id)
    members = person_ids(session, customer.id)
    rows = session.scalars(
        select(Consent)
        .where(Consent.customer_id.in_(members))
        .order_by(Consent.at.desc(), Consent.id.desc())
    ).all()
    history = [_record(row) for row in rows]
    current: dict[tuple[str, str], ConsentRecord | None] = {
        (p, c): None for p in PURPOSES for c in CHANNELS
    }
    for record in reversed(history):
        if record.at <= now:
            current[(record.purpose, record.channel)] = record
    pending = session.scalars(
        select(ConsentConfirmation)
        .where(
            ConsentConfirmation.customer_id.in_(members),
            ConsentConfirmation.confirmed_at.is_(None),
            ConsentConfirmation.expires_at > now,
        )
        .order_by(ConsentConfirmation.requested_at.desc())
    ).all()
    audit.record(session, now, actor, "consent.viewed", "customer", str(customer.id))
    return ConsentState(
        customer.id,
        current,
        history,
        [_pending(p) for p in pending],
        customer.erased_at is not None,
    )


def current_consents(session: Session, customer_id: uuid.UUID) -> dict[tuple[str, str], bool]:
    """The consent in force per (purpose, channel): the latest decision wins."""
    rows = session.execute(
        select(Consent.purpose, Consent.channel, Consent.granted)
        .where(Consent.customer_id == customer_id)
        .order_by(Consent.at, Consent.id)
    )
    return {(purpose, channel): granted for purpose, channel, granted in rows}


# ------------------------------------------------------------------ enforcement


def can_contact(
    session: Session, profile_id: uuid.UUID, purpose: str, channel: str, now: datetime
) -> Decision:
    """The rule every sender obeys: contact only on a granted, unwithdrawn consent.

    The latest decision at `now` wins; no decision means no (opt-in); an erased or
    unknown profile is never contacted. Raises `InvalidInput` on an unknown purpose or
    channel.
    """
    return can_contact_many(session, [profile_id], purpose, channel, now)[profile_id]


def can_contact_many(
    session: Session, profile_ids: Iterable[uuid.UUID], purpose: str, channel: str, now: datetime
) -> dict[uuid.UUID, Decision]:
    """`can_contact` for many profiles at once: a few queries per 5,000 profiles (one per
    level of merging, then one for the decisions), never one per profile."""
    errors = check_purpose_and_channel(purpose, channel)
    if errors:
        raise InvalidInput("Cannot check consent for this purpose and channel.", errors)
    wanted = list(dict.fromkeys(profile_ids))
    decisions: dict[uuid.UUID, Decision] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        decisions.update(_decide(session, chunk, purpose, channel, now))
    return decisions


def _decide(
    session: Session, ids: Sequence[uuid.UUID], purpose: str, channel: str, now: datetime
) -> dict[uuid.UUID, Decision]:
    live_of, erased = follow_merges(session, ids)
    owner = _members(session, {live for live in live_of.values() if live is not None})
    latest: dict[uuid.UUID, tuple[datetime, uuid.UUID, bool]] = {}
    if owner:
        rows = session.execute(
            select(Consent.customer_id, Consent.at, Consent.id, Consent.granted).where(
                Consent.customer_id.in_(list(owner)),
                Consent.purpose == purpose,
                Consent.channel == channel,
                Consent.at <= now,
            )
        )
        for customer_id, at, consent_id, granted in rows:
            person = owner[customer_id]
            if person not in latest or (at, consent_id) > latest[person][:2]:
                latest[person] = (at, consent_id, granted)
    out = {}
    for profile_id in ids:
        live = live_of.get(profile_id)
        if live is None:
            out[profile_id] = Decision(False, UNKNOWN_PROFILE)
        elif erased[live]:
            out[profile_id] = Decision(False, ERASED)
        elif live not in latest:
            out[profile_id] = Decision(False, NO_CONSENT)
        else:
            yes = latest[live][2]
            out[profile_id] = Decision(yes, GRANTED if yes else WITHDRAWN)
    return out


def _members(session: Session, lives: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Every profile of each person: {profile id: live profile id}, following merges
    down; one query per level of merging."""
    owner = {live: live for live in lives}
    frontier = set(lives)
    while frontier:
        rows = session.execute(
            select(Customer.id, Customer.merged_into_id).where(
                Customer.merged_into_id.in_(list(frontier))
            )
        ).all()
        frontier = set()
        for child, into in rows:
            if child not in owner and into is not None:
                owner[child] = owner[into]
                frontier.add(child)
    return owner


# ------------------------------------------------------------------ recording


def add_consents(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Record consent decisions in bulk, as they are (each row: customer_id, purpose,
    channel, granted, at, source, proof; optionally wording_version, evidence). For
    migrating decisions taken elsewhere: no double opt-in is started."""
    prepared = []
    for index, row in enumerate(rows):
        errors = check_purpose_and_channel(row["purpose"], row["channel"], f"#/{index}")
        if errors:
            raise InvalidInput(f"consent #{index} is invalid", errors)
        prepared.append({"id": new_id(), "wording_version": None, "evidence": None, **row})
    if prepared:
        session.execute(bulk_insert(Consent), prepared)
    return len(prepared)


def record_consents(
    session: Session,
    now: datetime,
    actor: Actor,
    profile_id: uuid.UUID,
    decisions: Sequence[ConsentInput],
    opt_in: DoubleOptIn,
) -> ConsentOutcome:
    """Record a profile's decisions; an email marketing grant starts a double opt-in
    (a confirmation email) instead of being granted at once. All-or-nothing."""
    errors = [error for i, item in enumerate(decisions) for error in _check_input(i, item)]
    # Checked on the person's live profile, kept on the id it was taken with: an unmerge
    # then gives the decision back to the profile it came from.
    customer = _live_profile(session, profile_id)
    targets: dict[int, str] = {}
    for index, item in enumerate(decisions):
        if not (item.granted and (item.purpose, item.channel) in DOUBLE_OPT_IN):
            continue
        email = usable_email(item.email) or _profile_email(session, customer)
        if email is None:
            errors.append(
                FieldError(
                    "the profile has no email address to confirm this grant: send `email`",
                    pointer=f"#/consents/{index}/email",
                )
            )
        else:
            targets[index] = email
    if errors:
        raise InvalidInput("Some consent decisions are invalid; none was recorded.", errors)
    recorded: list[ConsentRecord] = []
    pending: list[PendingConfirmation] = []
    for index, item in enumerate(decisions):
        if index in targets:
            pending.append(
                _request(session, now, opt_in, targets[index], item, profile_id, customer.locale)
            )
            continue
        row = Consent(
            id=new_id(),
            customer_id=profile_id,
            purpose=item.purpose,
            channel=item.channel,
            granted=item.granted,
            at=now,
            source=item.source,
            proof=item.proof,
            wording_version=item.wording_version,
            evidence=_evidence(item) or None,
        )
        session.add(row)
        recorded.append(_record(row))
    session.flush()
    audit.record(
        session,
        now,
        actor,
        "consent.recorded",
        "customer",
        str(profile_id),
        recorded=len(recorded),
        pending=len(pending),
    )
    return ConsentOutcome(recorded, pending)


def _profile_email(session: Session, customer: Customer) -> str | None:
    if customer.email:
        return usable_email(customer.email)
    emails = [i for i in identity.identifiers_of(session, customer.id) if i.kind == "email"]
    emails.sort(key=lambda i: i.last_seen, reverse=True)
    return usable_email(emails[0].value) if emails else None


def request_email_confirmation(
    session: Session,
    now: datetime,
    actor: Actor,
    email: str,
    item: ConsentInput,
    opt_in: DoubleOptIn,
    locale: str = "fr",
) -> PendingConfirmation:
    """Start a double opt-in for an address (a sign-up form): the profile is found or
    made, and a tombstone left by an erasure cleared, only when the person confirms."""
    errors = _check_input(0, item)
    address = usable_email(email)
    if address is None:
        errors.append(FieldError("is not an email address", pointer="#/email"))
    if (item.purpose, item.channel) not in DOUBLE_OPT_IN and not errors:
        errors.append(
            FieldError(
                "a confirmation by email is for marketing by email only",
                pointer="#/consents/0/channel",
            )
        )
    if errors:
        raise InvalidInput("The request is invalid; no email was sent.", errors)
    assert address is not None
    profile_id = identity.resolve(session, "email", address)
    if profile_id is not None:
        customer = session.get(Customer, profile_id)
        if customer is None or customer.erased_at is not None:
            profile_id = None
    pending = _request(session, now, opt_in, address, item, profile_id, locale)
    audit.record(session, now, actor, "consent.confirmation_requested", "consent", str(pending.id))
    return pending


def _request(
    session: Session,
    now: datetime,
    opt_in: DoubleOptIn,
    email: str,
    item: ConsentInput,
    profile_id: uuid.UUID | None,
    locale: str,
) -> PendingConfirmation:
    locale = locale if locale in SUPPORTED_LOCALES else "fr"
    row = ConsentConfirmation(
        id=new_id(),
        customer_id=profile_id,
        email=email,
        purpose=item.purpose,
        channel=item.channel,
        source=item.source,
        wording_version=item.wording_version,
        locale=locale,
        evidence={**_evidence(item), **({"proof": item.proof} if item.proof else {})} or None,
        requested_at=now,
        expires_at=now + opt_in.valid_for,
    )
    session.add(row)
    session.flush()
    token = signing.sign(session, now, CONFIRM_SIGNING, {"r": str(row.id)}, row.expires_at)
    link = f"{opt_in.public_url}/consent/confirm/{token}?lang={locale}"
    opt_in.mailer.send_email(_confirmation_email(row, link, opt_in.timezone, now))
    return _pending(row)


def _confirmation_email(
    row: ConsentConfirmation, link: str, timezone: str, now: datetime
) -> OutgoingEmail:
    _ = translations(row.locale).gettext
    until = format_datetime(
        row.expires_at, "d MMMM y, HH:mm", tzinfo=ZoneInfo(timezone), locale=row.locale
    )
    texts = {
        "subject": _("Please confirm your subscription"),
        "intro": _("You asked to receive our news and offers by email."),
        "action": _("Confirm my subscription"),
        "validity": _("This link is valid until %(date)s.") % {"date": until},
        "ignore": _("If you did not ask for it, ignore this email: you will receive nothing."),
    }
    text = "\n\n".join(
        [texts["intro"], f"{texts['action']}: {link}", texts["validity"], texts["ignore"]]
    )
    html = _email_templates().get_template("customers/consent_confirm_email.html")
    return OutgoingEmail(
        to=row.email,
        subject=texts["subject"],
        text=text + "\n",
        html=html.render(texts=texts, link=link, locale=row.locale),
        date=now,
    )


@cache
def _email_templates() -> Environment:
    return Environment(
        loader=PackageLoader("parcours.customers", "templates"),
        autoescape=select_autoescape(default=True),
    )


# ------------------------------------------------------------------ confirming


@dataclass(frozen=True)
class Confirmation:
    """A confirmed double opt-in: the consent it granted and the profile."""

    request: PendingConfirmation
    profile_id: uuid.UUID
    consent: ConsentRecord


def pending_confirmation(session: Session, now: datetime, token: str) -> PendingConfirmation:
    """The request a confirmation link stands for, if it can still be confirmed."""
    return _pending(_usable_request(session, now, token))


def _usable_request(session: Session, now: datetime, token: str) -> ConsentConfirmation:
    payload = signing.verify(session, now, CONFIRM_SIGNING, token)
    try:
        request_id = uuid.UUID(str(payload.get("r")))
    except ValueError:
        raise signing.InvalidToken() from None
    row = session.get(ConsentConfirmation, request_id)
    if row is None:
        raise SaidNotFound(NO_REQUEST)
    if row.confirmed_at is not None:
        raise SaidConflict(CONFIRMED_ONCE)
    if row.expires_at < now:
        raise signing.ExpiredToken()
    return row


def confirm(
    session: Session, now: datetime, token: str, evidence: Mapping[str, str]
) -> Confirmation:
    """Grant the consent a confirmation link asked for, with the proof of the click
    (`evidence`: ip, user_agent, kept as `confirmed_ip`, ... beside the request's own).

    An erasure tombstone on the address is cleared (the person came back and said yes);
    a replayed link is refused, so a later withdrawal is never undone by it.
    """
    from parcours.customers import privacy  # privacy imports this module

    row = _usable_request(session, now, token)
    privacy.clear_tombstone(session, "email", row.email)
    profile_id = row.customer_id
    if profile_id is not None:
        profile_id = identity.canonical_profile_id(session, profile_id)
        customer = session.get(Customer, profile_id) if profile_id is not None else None
        if customer is None or customer.erased_at is not None:
            profile_id = None
    if profile_id is None:
        observation = identity.Observation(
            {"email": row.email}, f"consent:{row.source}", now, {}, f"confirmation:{row.id}"
        )
        profile_id = identity.observe(session, now, [observation])[0]
    if profile_id is None:
        raise Conflict("No profile can hold this address; nothing was recorded.")
    facts = {
        **(row.evidence or {}),
        **{f"confirmed_{k}": v for k, v in evidence.items() if v},
        "confirmation_id": str(row.id),
        "requested_at": row.requested_at.isoformat(),
        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
    proof = facts.pop("proof", None)
    consent = Consent(
        id=new_id(),
        customer_id=profile_id,
        purpose=row.purpose,
        channel=row.channel,
        granted=True,
        at=now,
        source=row.source,
        proof=proof or "double opt-in confirmed from the email link",
        wording_version=row.wording_version,
        evidence=facts,
    )
    session.add(consent)
    row.customer_id = profile_id
    row.confirmed_at = now
    row.consent_id = consent.id
    session.flush()
    return Confirmation(_pending(row), profile_id, _record(consent))


# ------------------------------------------------------------------ unsubscribing


@dataclass(frozen=True)
class Unsubscribed:
    profile_id: uuid.UUID
    purpose: str
    channel: str
    already: bool  # nothing recorded: the consent was not in force anyway


def unsubscribe_token(
    session: Session, now: datetime, profile_id: uuid.UUID, purpose: str, channel: str
) -> str:
    """The signed token of a profile's unsubscribe link for one purpose and channel
    (the same every time; it does not expire, as old messages must keep working)."""
    errors = check_purpose_and_channel(purpose, channel)
    if errors:
        raise InvalidInput("Cannot make an unsubscribe link for this.", errors)
    payload = {"c": channel, "p": str(profile_id), "u": purpose}
    return signing.sign(session, now, UNSUBSCRIBE_SIGNING, payload)


def unsubscribe_url(
    session: Session,
    now: datetime,
    public_url: str,
    profile_id: uuid.UUID,
    purpose: str = "marketing",
    channel: str = "email",
) -> str:
    """The one-click unsubscribe address for a message (its `List-Unsubscribe`)."""
    token = unsubscribe_token(session, now, profile_id, purpose, channel)
    return f"{public_url.rstrip('/')}/consent/unsubscribe/{token}"


def read_unsubscribe_token(
    session: Session, now: datetime, token: str
) -> tuple[uuid.UUID, str, str]:
    """(profile id, purpose, channel) of an unsubscribe token, or `InvalidToken`."""
    payload = signing.verify(session, now, UNSUBSCRIBE_SIGNING, token)
    try:
        profile_id = uuid.UUID(str(payload["p"]))
        purpose, channel = str(payload["u"]), str(payload["c"])
    except (KeyError, ValueError):
        raise signing.InvalidToken() from None
    if check_purpose_and_channel(purpose, channel):
        raise signing.InvalidToken()
    return profile_id, purpose, channel


def unsubscribe(
    session: Session, now: datetime, token: str, evidence: Mapping[str, str], source: str
) -> Unsubscribed:
    """Withdraw the consent an unsubscribe link stands for, with the proof of the click.
    Idempotent: a second click records nothing."""
    token_profile, purpose, channel = read_unsubscribe_token(session, now, token)
    live = identity.canonical_profile_id(session, token_profile)
    customer = session.get(Customer, live) if live is not None else None
    if customer is None or customer.erased_at is not None:
        return Unsubscribed(token_profile, purpose, channel, already=True)
    profile_id = token_profile
    in_force = can_contact(session, profile_id, purpose, channel, now)
    if in_force.reason == WITHDRAWN:
        return Unsubscribed(profile_id, purpose, channel, already=True)
    facts = {k: v for k, v in evidence.items() if v}
    facts["token_sha256"] = hashlib.sha256(token.encode()).hexdigest()
    session.add(
        Consent(
            id=new_id(),
            customer_id=profile_id,
            purpose=purpose,
            channel=channel,
            granted=False,
            at=now,
            source=source,
            proof="unsubscribe link",
            evidence=facts,
        )
    )
    session.flush()
    return Unsubscribed(profile_id, purpose, channel, already=False)


# ------------------------------------------------------------------ erasure and retention


def _deleted(session: Session, stmt: Any) -> int:
    return int(cast("CursorResult[Any]", session.execute(stmt)).rowcount)


def erase_consents(
    session: Session, profile_ids: Sequence[uuid.UUID], emails: Iterable[str]
) -> int:
    """Delete a person's decisions and their (or their addresses') confirmation requests."""
    ids = list(profile_ids)
    deleted = _deleted(session, delete(Consent).where(Consent.customer_id.in_(ids)))
    addresses = sorted(set(emails))
    condition: ColumnElement[bool] = ConsentConfirmation.customer_id.in_(ids)
    if addresses:
        condition = or_(condition, ConsentConfirmation.email.in_(addresses))
    return deleted + _deleted(session, delete(ConsentConfirmation).where(condition))


def purge_superseded(session: Session, now: datetime, before: datetime) -> int:
    """Delete decisions taken before `before` that a later decision (up to `now`)
    replaced; the decision in force is always kept, however old."""
    later = aliased(Consent)
    replaced = (
        select(later.id)
        .where(
            later.customer_id == Consent.customer_id,
            later.at <= now,
            later.purpose == Consent.purpose,
            later.channel == Consent.channel,
            or_(later.at > Consent.at, and_(later.at == Consent.at, later.id > Consent.id)),
        )
        .exists()
    )
    return _deleted(session, delete(Consent).where(Consent.at < before, replaced))


def purge_unconfirmed(session: Session, expired_before: datetime) -> int:
    """Delete confirmation requests never confirmed and expired before the date."""
    return _deleted(
        session,
        delete(ConsentConfirmation).where(
            ConsentConfirmation.confirmed_at.is_(None),
            ConsentConfirmation.expires_at < expired_before,
        ),
    )
