"""Payments of orders, behind an adapter per payment provider.

Two providers ship: `in_store` (the default: nothing is charged online; the payment is
pending until the customer pays at the till or at the pickup desk, where staff capture
it) and `simulator` (a test payment provider: it answers at once with a random
`provider_ref` and later tells us what happened through signed webhooks, as a real card
provider would). A real provider is one more class with the `PaymentProvider` shape.

Simulator webhooks are JSON `{"id", "type", "payment_ref", "amount"}` with `type` one of
`payment.captured`, `payment.failed`, `refund.succeeded`, signed in the header
`Parcours-Signature: t=<unix seconds>,v1=<hex>` where `v1` is HMAC-SHA256 of
`"<t>.<raw body>"` under a key derived from the installation's secret (so the timestamp
cannot be swapped). Signatures older or newer than 5 minutes are refused, and each
event id is processed once (`PaymentNotification`): a replay is acknowledged and changes
nothing.

Refunds: `refund` records the money given back and emits `Order Refunded` itself, so
every refund (a cancellation, a return, a provider-side refund) is announced once, from
one place; callers do not emit it.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.core.errors import Conflict, MalformedRequest, NotFound
from parcours.core.signing import instance_secret, keyed_digest
from parcours.orders.models import Order, Payment, PaymentNotification
from parcours.orders.service import (
    ORDER_REFUNDED,
    PAYMENT_CAPTURED,
    add_event,
    emit,
    get_order,
    payments_of,
)

SIGNATURE_HEADER = "Parcours-Signature"
SIGNATURE_TOLERANCE = timedelta(minutes=5)
WEBHOOK_PURPOSE = "orders:payments:webhook:"
WEBHOOK_TYPES = ("payment.captured", "payment.failed", "refund.succeeded")


class InvalidSignature(MalformedRequest):
    """A webhook whose signature is missing, forged or too old (400)."""

    slug, title = "invalid-signature", "Invalid signature"


class PaymentProvider(Protocol):
    """What Parcours needs from a payment provider."""

    name: str

    def open(self, order: Order, method: str) -> tuple[str, str]:
        """Start collecting `order.total`: `(provider_ref, initial status)`."""
        ...


class InStoreProvider:
    """Paid at the till or at pickup: pending until staff capture it there."""

    name = "in_store"

    def open(self, order: Order, method: str) -> tuple[str, str]:
        return f"instore_{secrets.token_hex(10)}", "pending"


class SimulatorProvider:
    """A test card provider: pending at once, settled later by its signed webhooks."""

    name = "simulator"

    def open(self, order: Order, method: str) -> tuple[str, str]:
        return f"sim_{secrets.token_hex(12)}", "pending"


PROVIDERS: dict[str, PaymentProvider] = {
    p.name: p for p in (InStoreProvider(), SimulatorProvider())
}


def provider_named(name: str) -> PaymentProvider:
    provider = PROVIDERS.get(name)
    if provider is None:
        raise NotFound(f"No payment provider is called {name!r}: use one of {sorted(PROVIDERS)}.")
    return provider


# ------------------------------------------------------------------ payments


def start_payment(
    session: Session,
    now: datetime,
    order: Order,
    provider: str = "in_store",
    method: str = "in_store",
) -> Payment:
    """Open a payment of the order's total with `provider` (in the caller's transaction)."""
    ref, status = provider_named(provider).open(order, method)
    payment = Payment(
        order_id=order.id,
        provider=provider,
        provider_ref=ref,
        method=method,
        status=status,
        amount=order.total,
        refunded_amount=0,
        currency=order.currency,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    return payment


def _capture(session: Session, now: datetime, order: Order, payment: Payment, actor: str) -> None:
    payment.status = "captured"
    payment.updated_at = now
    order.payment_status = "captured"
    order.updated_at = now
    add_event(
        session, now, order.id, "payment", actor, to_status="captured",
        data={"payment_id": str(payment.id), "provider": payment.provider,
              "amount": payment.amount},
    )  # fmt: skip
    emit(
        session, now, order, PAYMENT_CAPTURED, step=str(payment.id),
        properties={"payment_provider": payment.provider, "payment_method": payment.method,
                    "amount_cents": payment.amount},
    )  # fmt: skip
    from parcours.orders import lifecycle  # lifecycle uses refunds: import at call time

    lifecycle.refresh_order_status(session, now, order)


def capture_in_store(session: Session, now: datetime, order: Order, actor: str) -> Payment | None:
    """The customer paid at the till or the pickup desk: capture the pending in-store
    payment (opening one first when the order had none). None if already paid."""
    rows = payments_of(session, order.id)
    if any(p.status == "captured" for p in rows):
        return None
    pending = [p for p in rows if p.provider == "in_store" and p.status == "pending"]
    payment = pending[0] if pending else start_payment(session, now, order)
    _capture(session, now, order, payment, actor)
    return payment


def refundable(session: Session, order: Order) -> int:
    """What can still be given back: captured minus already refunded, in cents."""
    return sum(
        p.amount - p.refunded_amount
        for p in payments_of(session, order.id)
        if p.status in ("captured", "refunded")
    )


def refund(
    session: Session, now: datetime, order: Order, amount: int, reason: str, actor: str = "system"
) -> Payment:
    """Give `amount` cents back on the order's captured payments (never more than captured
    minus refunded: 409 with `refundable` otherwise) and emit `Order Refunded`. Returns
    the (last) payment refunded."""
    left = refundable(session, order)
    if amount <= 0 or amount > left:
        raise Conflict(
            f"Cannot refund {amount} cents on order {order.number}: {left} can be refunded.",
            refundable=left,
            requested=amount,
        )
    remaining = amount
    touched: Payment | None = None
    for payment in payments_of(session, order.id):
        if remaining == 0 or payment.status not in ("captured", "refunded"):
            continue
        part = min(remaining, payment.amount - payment.refunded_amount)
        if part <= 0:
            continue
        _record_refund(now, payment, payment.refunded_amount + part)
        remaining -= part
        touched = payment
    assert touched is not None
    _after_refund(session, now, order, amount, reason, actor)
    return touched


def _record_refund(now: datetime, payment: Payment, refunded_total: int) -> None:
    payment.refunded_amount = refunded_total
    payment.status = "refunded" if refunded_total >= payment.amount else "captured"
    payment.updated_at = now


def _after_refund(
    session: Session, now: datetime, order: Order, amount: int, reason: str, actor: str
) -> None:
    left = refundable(session, order)
    if left == 0:
        order.payment_status = "refunded"
    order.updated_at = now
    refunded_total = sum(p.refunded_amount for p in payments_of(session, order.id))
    add_event(
        session, now, order.id, "refund", actor, note=reason,
        data={"amount": amount, "refunded_total": refunded_total},
    )  # fmt: skip
    emit(
        session, now, order, ORDER_REFUNDED, step=f"refunded-{refunded_total}",
        properties={"reason": reason, "refund_cents": amount, "total": amount / 100},
    )  # fmt: skip


# ------------------------------------------------------------------ webhooks


def _webhook_key(session: Session, now: datetime) -> bytes:
    secret = instance_secret(session, now)
    assert secret is not None
    return secret


def signature_for(session: Session, now: datetime, provider: str, raw_body: bytes) -> str:
    """The `Parcours-Signature` header value for `raw_body` sent at `now`."""
    stamp = int(now.timestamp())
    text = f"{stamp}.{raw_body.decode('utf-8')}"
    digest = keyed_digest(_webhook_key(session, now), WEBHOOK_PURPOSE + provider, text)
    return f"t={stamp},v1={digest}"


def simulated_webhook(
    session: Session, now: datetime, payment: Payment, kind: str, amount: int | None = None,
    event_id: str | None = None,
) -> tuple[bytes, str]:  # fmt: skip
    """A correctly signed simulator webhook about `payment`: `(raw body, signature)`.
    For tests, the demo and the console's "simulate payment" action."""
    body = {
        "id": event_id or f"evt_{secrets.token_hex(10)}",
        "type": kind,
        "payment_ref": payment.provider_ref,
        "amount": payment.amount if amount is None else amount,
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    return raw, signature_for(session, now, payment.provider, raw)


def verify_signature(
    session: Session, now: datetime, provider: str, raw_body: bytes, header: str | None
) -> None:
    """`InvalidSignature` unless `header` signs `raw_body` within the tolerance."""
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    stamp, presented = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not presented:
        raise InvalidSignature(f"The {SIGNATURE_HEADER} header is missing or malformed.")
    sent = datetime.fromtimestamp(int(stamp), tz=now.tzinfo)
    if abs(now - sent) > SIGNATURE_TOLERANCE:
        raise InvalidSignature("The webhook signature is too old (or from the future).")
    try:
        text = f"{stamp}.{raw_body.decode('utf-8')}"
    except UnicodeDecodeError:
        raise InvalidSignature("The webhook body is not UTF-8.") from None
    secret = instance_secret(session)
    expected = keyed_digest(secret, WEBHOOK_PURPOSE + provider, text) if secret else ""
    if not hmac.compare_digest(expected, presented):
        raise InvalidSignature("The webhook signature does not match its body.")


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    kind: str
    replayed: bool
    payment_id: str | None


def _parse(raw_body: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise MalformedRequest("The webhook body is not JSON.") from None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("id"), str)
        or body.get("type") not in WEBHOOK_TYPES
        or not isinstance(body.get("payment_ref"), str)
        or not isinstance(body.get("amount"), int)
    ):
        raise MalformedRequest(
            "A payment webhook is {id, type, payment_ref, amount} with type one of "
            f"{', '.join(WEBHOOK_TYPES)}."
        )
    return body


def handle_webhook(
    session: Session, now: datetime, provider: str, raw_body: bytes, signature: str | None
) -> WebhookOutcome:
    """Act on a provider's signed notification, once per event id.

    Forged or stale signature: 400. Replay of an event already processed: acknowledged,
    nothing changes. Unknown payment: 404. Amount not the payment's: 409.
    """
    provider_named(provider)
    verify_signature(session, now, provider, raw_body, signature)
    body = _parse(raw_body)
    event_id, kind = body["id"], body["type"]
    seen = session.get(PaymentNotification, (provider, event_id))
    if seen is not None:
        paid = str(seen.payment_id) if seen.payment_id else None
        return WebhookOutcome(event_id, kind, True, paid)
    payment = session.scalar(
        select(Payment).where(
            Payment.provider == provider, Payment.provider_ref == body["payment_ref"]
        )
    )
    if payment is None:
        raise NotFound(f"No {provider} payment has the reference {body['payment_ref']!r}.")
    _apply(session, now, payment, kind, body["amount"])
    session.add(
        PaymentNotification(
            provider=provider, event_ref=event_id, payment_id=payment.id, kind=kind,
            received_at=now,
        )
    )  # fmt: skip
    session.flush()
    return WebhookOutcome(event_id, kind, False, str(payment.id))


def _apply(session: Session, now: datetime, payment: Payment, kind: str, amount: int) -> None:
    order = get_order(session, payment.order_id)
    actor = f"provider:{payment.provider}"
    if kind == "refund.succeeded":
        _provider_refund(session, now, order, payment, amount, actor)
        return
    if amount != payment.amount:
        raise Conflict(
            f"The webhook says {amount} cents but payment {payment.provider_ref} is for "
            f"{payment.amount}: not applied.",
            expected=payment.amount,
            received=amount,
        )
    if kind == "payment.captured":
        if payment.status != "captured":
            _capture(session, now, order, payment, actor)
        return
    if payment.status in ("captured", "refunded"):
        raise Conflict(f"Payment {payment.provider_ref} is already {payment.status}: not failed.")
    payment.status = "failed"
    payment.updated_at = now
    order.payment_status = "failed"
    order.updated_at = now
    add_event(
        session, now, order.id, "payment", actor, to_status="failed",
        data={"payment_id": str(payment.id)},
    )  # fmt: skip


def _provider_refund(
    session: Session, now: datetime, order: Order, payment: Payment, amount: int, actor: str
) -> None:
    """`refund.succeeded` carries the payment's total refunded so far at the provider:
    applying it twice, or after our own `refund` recorded it, changes nothing."""
    if payment.status not in ("captured", "refunded") or not 0 < amount <= payment.amount:
        raise Conflict(
            f"A refund of {amount} cents does not fit payment {payment.provider_ref} "
            f"({payment.status}, {payment.amount} cents).",
            expected=payment.amount,
            received=amount,
        )
    if amount <= payment.refunded_amount:
        return
    added = amount - payment.refunded_amount
    _record_refund(now, payment, amount)
    _after_refund(session, now, order, added, "refunded at the payment provider", actor)
