"""Pickup codes: the short code a customer shows at the store to collect an order.

A code is 6 characters from an alphabet without the look-alikes 0/O and 1/I, so it can
be read aloud or typed from a phone screen. Only a keyed hash of it is stored
(`keyed_digest` under the installation's secret): a leaked database does not let anyone
collect orders. The clear code is returned once, when it is issued, for the
confirmation email and the customer's order page.

Verification is at one store for one order: a wrong code counts an attempt, and after
`MAX_ATTEMPTS` the pickup is locked (staff then check an identity document and unlock it
by issuing a new code), so a code cannot be guessed by trying them all at the desk.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from parcours.core.errors import Refused, SaidConflict, refusal
from parcours.core.signing import instance_secret, keyed_digest
from parcours.orders import lifecycle, payments
from parcours.orders.models import PICKUP_MODES, Fulfilment, Order
from parcours.orders.service import add_event, get_order_by_number, payments_of

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0, O, 1, I
CODE_LENGTH = 6
MAX_ATTEMPTS = 5
PURPOSE = "orders:pickup-code"
# What the pickup counter refuses, as `message % values` for the console.
NOTHING_TO_COLLECT = "Order %(number)s has nothing to collect in a store."
COLLECTED_ELSEWHERE = "Order %(number)s is collected at another store, not this one."
LOCKED = (
    "Pickup of order %(number)s is locked after %(limit)s wrong codes: "
    "check the customer's identity and issue a new code."
)
NOT_COLLECTABLE = {
    "expired": "Order %(number)s cannot be collected: "
    "the hold has ended and the goods went back to the shelf.",
    "collected": "Order %(number)s cannot be collected: it was already collected.",
    "cancelled": "Order %(number)s cannot be collected: it was cancelled.",
}
NOT_READY = "Order %(number)s cannot be collected: it is not ready for pickup yet."
ATTEMPTS_LEFT = "This is not the pickup code of order %(number)s: %(left)s attempt(s) left."
NOW_LOCKED = "This is not the pickup code of order %(number)s: the pickup is now locked."
WRONG_CODE = "wrong pickup code"
MESSAGES = (
    NOTHING_TO_COLLECT, COLLECTED_ELSEWHERE, LOCKED, *NOT_COLLECTABLE.values(), NOT_READY,
    ATTEMPTS_LEFT, NOW_LOCKED, WRONG_CODE,
)  # fmt: skip


def code_hash(session: Session, now: datetime, code: str) -> str:
    """The stored form of a code: a keyed hash under the installation's secret."""
    secret = instance_secret(session, now)
    assert secret is not None
    return keyed_digest(secret, PURPOSE, normalise(code))


def normalise(code: str) -> str:
    """What the customer typed, as issued: upper case, without spaces or dashes."""
    return "".join(code.split()).replace("-", "").upper()


def new_code(session: Session, now: datetime) -> tuple[str, str]:
    """A fresh random code and its hash: `(code, hash)`."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return code, code_hash(session, now, code)


def issue_code(session: Session, fulfilment: Fulfilment) -> str:
    """Give a pickup fulfilment a new code (replacing any earlier one and clearing the
    wrong attempts); returns the clear code, which is not stored."""
    code, digest = new_code(session, fulfilment.updated_at or fulfilment.created_at)
    fulfilment.pickup_code_hash = digest
    fulfilment.pickup_attempts = 0
    return code


def qr_payload(order_number: str, code: str) -> str:
    """What the pickup QR code encodes: the order and its code, as the desk types them."""
    return f"PARCOURS-PICKUP:{order_number}:{normalise(code)}"


def qr_svg(order_number: str, code: str) -> str:
    """The pickup QR code as a standalone SVG document (vector, no image library), for
    the checkout answer and the customer's confirmation."""
    import qrcode  # type: ignore[import-untyped]
    import qrcode.image.svg  # type: ignore[import-untyped]

    image = qrcode.make(
        qr_payload(order_number, code),
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=2,
    )
    return str(image.to_string(encoding="unicode"))


def parse_scan(text: str) -> tuple[str, str] | None:
    """`(order number, code)` from a scanned QR payload, or None for anything else."""
    prefix, _, rest = text.strip().partition(":")
    number, _, code = rest.partition(":")
    if prefix != "PARCOURS-PICKUP" or not number or not code:
        return None
    return number, code


def _pickup_at(session: Session, order: Order, store_id: uuid.UUID) -> Fulfilment:
    """The order's pickup fulfilment at this store; a clear error when there is none."""
    rows = list(
        session.scalars(
            select(Fulfilment).where(
                Fulfilment.order_id == order.id, Fulfilment.mode.in_(PICKUP_MODES)
            )
        )
    )
    if not rows:
        raise SaidConflict(NOTHING_TO_COLLECT, number=order.number)
    here = [f for f in rows if (f.pickup_store_id or f.location_id) == store_id]
    if not here:
        elsewhere = rows[0].pickup_store_id or rows[0].location_id
        raise SaidConflict(
            COLLECTED_ELSEWHERE,
            extensions={"pickup_store_id": str(elsewhere)},
            number=order.number,
        )
    waiting = [f for f in here if f.status == "ready_for_pickup"]
    return waiting[0] if waiting else here[0]


def _refuse_state(fulfilment: Fulfilment, order: Order, now: datetime) -> None:
    """A 409 saying why this pickup cannot be handed over now."""
    status = fulfilment.status
    if status == "ready_for_pickup" and fulfilment.hold_until and fulfilment.hold_until <= now:
        status = "expired"
    if status == "ready_for_pickup":
        return
    raise SaidConflict(
        NOT_COLLECTABLE.get(status, NOT_READY),
        extensions={"fulfilment_status": status},
        number=order.number,
    )


def _count_wrong_attempt(session: Session, fulfilment: Fulfilment) -> int:
    """Count a wrong code in one conditional write (two desks cannot both get a 6th try)."""
    attempts = session.execute(
        update(Fulfilment)
        .where(Fulfilment.id == fulfilment.id)
        .values(pickup_attempts=Fulfilment.pickup_attempts + 1)
        .returning(Fulfilment.pickup_attempts)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(fulfilment, "pickup_attempts", attempts)
    return int(attempts)


def verify_pickup(
    session: Session, now: datetime, store_id: uuid.UUID, order_number: str, code: str, actor: str
) -> Fulfilment:
    """Hand over a pickup at `store_id` when `code` is the order's: the fulfilment moves to
    `collected` (stock consumed), and an in-store payment is captured at the desk.

    Wrong code: `WrongCode` (422) naming the attempts left, raised after counting the
    attempt in the session: the caller must answer it *and commit* (catch it rather than
    let the request roll back), or the lock after 5 wrong codes (409) could be dodged.
    """
    order = get_order_by_number(session, order_number)
    fulfilment = _pickup_at(session, order, store_id)
    if fulfilment.pickup_attempts >= MAX_ATTEMPTS:
        raise SaidConflict(
            LOCKED,
            extensions={"attempts": fulfilment.pickup_attempts},
            number=order.number,
            limit=MAX_ATTEMPTS,
        )
    _refuse_state(fulfilment, order, now)
    expected = fulfilment.pickup_code_hash or ""
    if not hmac.compare_digest(code_hash(session, now, code), expected):
        attempts = _count_wrong_attempt(session, fulfilment)
        add_event(
            session, now, order.id, "pickup_refused", actor, fulfilment_id=fulfilment.id,
            note="wrong pickup code", data={"attempts": attempts},
        )  # fmt: skip
        # The attempt must outlive the failed request, or the lock could be dodged: the
        # caller catches WrongCode and answers it without rolling the session back.
        raise WrongCode(order.number, MAX_ATTEMPTS - attempts)
    lifecycle.transition(session, now, fulfilment.id, "collected", actor, note="code verified")
    if fulfilment.mode == "reserve_in_store" or _paid_in_store(session, order):
        payments.capture_in_store(session, now, order, actor)
    return fulfilment


def _paid_in_store(session: Session, order: Order) -> bool:
    return any(
        p.provider == "in_store" and p.status == "pending" for p in payments_of(session, order.id)
    )


class WrongCode(Refused):
    """A wrong pickup code (422), with the attempts left."""

    def __init__(self, number: str, left: int) -> None:
        message = ATTEMPTS_LEFT if left > 0 else NOW_LOCKED
        values = {"number": number, "left": left}
        errors = [refusal(WRONG_CODE, pointer="#/code")]
        super().__init__(message % values, errors, message, **values)
        self.extensions["attempts_left"] = max(left, 0)
