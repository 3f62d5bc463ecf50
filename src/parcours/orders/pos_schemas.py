"""API shapes of till receipts (`/v1/pos`), and the reading of one receipt from JSON.

A batch body is read receipt by receipt (`receipt_from_json`), so one malformed receipt
of an offline upload is reported with its pointer while the others are kept.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from parcours.core.errors import FieldError, InvalidInput
from parcours.orders.pos import MAX_BATCH, Receipt, ReceiptLine, RecordedReceipt, Tender

PaymentMethod = Literal["card", "cash", "gift_card", "voucher", "cheque", "mobile", "other"]


class ReceiptLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: StrictInt = Field(description="Units sold, more than 0 (returns: the returns API).")
    unit_price: StrictInt = Field(description="Cents, VAT included, before the discount.")
    discount: StrictInt = Field(default=0, description="Cents off the whole line.")


class TenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: PaymentMethod
    amount: StrictInt = Field(description="Cents kept (change already given back).")


class CustomerIn(BaseModel):
    """Who bought, if the till identified them: any one of these is enough."""

    model_config = ConfigDict(extra="forbid")

    customer_id: uuid.UUID | None = None
    loyalty_card: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)


class ReceiptIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "store": "LYO-1",
                "till": "T2",
                "cashier": "c.durand",
                "number": "000451",
                "sold_at": "2026-03-14T10:42:00+01:00",
                "lines": [{"sku": "ROBE-LIN-S", "quantity": 1, "unit_price": 8990}],
                "payments": [{"method": "card", "amount": 8990}],
                "customer": {"loyalty_card": "LAV-000123"},
            }
        },
    )

    store: str = Field(min_length=1, max_length=64, description="The store's id or code.")
    till: str = Field(min_length=1, max_length=32)
    cashier: str = Field(min_length=1, max_length=64)
    number: str = Field(min_length=1, max_length=40, description="The till's receipt number.")
    sold_at: datetime = Field(description="Time of sale: UTC (`Z`) or with its offset.")
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    locale: Literal["fr", "en"] = "fr"
    lines: list[ReceiptLineIn] = Field(min_length=1, max_length=1000)
    payments: list[TenderIn] = Field(min_length=1, max_length=20)
    customer: CustomerIn | None = None

    def to_receipt(self) -> Receipt:
        who = self.customer or CustomerIn()
        return Receipt(
            store=self.store,
            till=self.till,
            cashier=self.cashier,
            number=self.number,
            sold_at=self.sold_at,
            currency=self.currency.upper(),
            locale=self.locale,
            lines=[ReceiptLine(**x.model_dump()) for x in self.lines],
            payments=[Tender(**p.model_dump()) for p in self.payments],
            customer_id=who.customer_id,
            loyalty_card=who.loyalty_card,
            email=who.email,
            phone=who.phone,
        )


class ReceiptBatchIn(BaseModel):
    """An offline till's upload: each item is read and judged on its own."""

    receipts: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_BATCH, description="Receipts shaped as ReceiptIn."
    )


def receipt_from_json(raw: Any, pointer: str) -> Receipt:
    """A receipt from decoded JSON, or `InvalidInput` pointing under `pointer`."""
    try:
        return ReceiptIn.model_validate(raw).to_receipt()
    except ValidationError as exc:
        errors = [
            FieldError(str(e["msg"]), pointer=pointer + "".join(f"/{p}" for p in e["loc"]))
            for e in exc.errors()
        ]
        raise InvalidInput(
            f"The receipt has {len(errors)} invalid field(s); it was not recorded.", errors
        ) from None


class ReceiptOut(BaseModel):
    order_id: uuid.UUID
    number: str = Field(description="The order's number, e.g. S2026-000042.")
    external_ref: str = Field(description="<store code>/<till>/<receipt number>.")
    status: str
    total: int
    currency: str
    customer_id: uuid.UUID | None
    replayed: bool = Field(description="True: this receipt was already recorded.")

    @classmethod
    def of(cls, recorded: RecordedReceipt) -> ReceiptOut:
        order = recorded.order
        return cls(
            order_id=order.id,
            number=order.number,
            external_ref=order.external_ref or "",
            status=order.status,
            total=order.total,
            currency=order.currency,
            customer_id=order.customer_id,
            replayed=not recorded.created,
        )


class ProblemItem(BaseModel):
    detail: str
    pointer: str | None = None


class AcceptedReceipt(ReceiptOut):
    index: int


class RejectedReceiptOut(BaseModel):
    index: int
    reference: str
    status: int = Field(description="The status this receipt alone would have got.")
    detail: str
    errors: list[ProblemItem]


class ReceiptBatchOut(BaseModel):
    accepted: list[AcceptedReceipt]
    rejected: list[RejectedReceiptOut]
