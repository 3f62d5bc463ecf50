"""REST endpoints of store tills (`/v1/pos`): one receipt, or an offline batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse

from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, IdempotencyKey, api_caller, respond_once
from parcours.core.errors import ParcoursError
from parcours.orders import pos
from parcours.orders.pos_schemas import (
    AcceptedReceipt,
    ProblemItem,
    ReceiptBatchIn,
    ReceiptBatchOut,
    ReceiptIn,
    ReceiptOut,
    RejectedReceiptOut,
    receipt_from_json,
)

router = APIRouter(prefix="/v1/pos", tags=["pos"])
Writer = Annotated[Actor, Depends(api_caller("commerce:write"))]


@router.post(
    "/receipts",
    response_model=ReceiptOut,
    status_code=status.HTTP_201_CREATED,
    summary="Record a till receipt as a completed store order",
    description=(
        "A receipt already recorded (same store, till and number) answers its order with "
        "`replayed: true` and records nothing. Payments must add up to the lines (400 "
        "otherwise). Returns are not receipts: use the returns API."
    ),
)
def post_receipt(
    body: ReceiptIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def action() -> dict[str, Any]:
        recorded = pos.record_receipt(
            session, now, body.to_receipt(), allowed_stores=caller.store_ids
        )
        return ReceiptOut.of(recorded).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, action)


@router.post(
    "/receipts/batch",
    response_model=ReceiptBatchOut,
    summary="Upload an offline till's receipts (up to 500); each is judged on its own",
    description=(
        "The answer lists the receipts `accepted` (recorded now or already) and those "
        "`rejected`, each with the status it would have got alone and JSON pointers into "
        "this body (`#/receipts/3/lines/0/sku`). Send the rejected ones again once fixed."
    ),
)
def post_receipt_batch(
    body: ReceiptBatchIn, session: DbSession, clock: ClockDep, caller: Writer
) -> ReceiptBatchOut:
    now = clock.now()
    parsed: list[pos.Receipt | ParcoursError] = []
    for index, raw in enumerate(body.receipts):
        try:
            parsed.append(receipt_from_json(raw, f"#/receipts/{index}"))
        except ParcoursError as exc:
            parsed.append(exc)
    result = pos.record_receipts(session, now, parsed, allowed_stores=caller.store_ids)
    return ReceiptBatchOut(
        accepted=[
            AcceptedReceipt(index=index, **ReceiptOut.of(recorded).model_dump())
            for index, recorded in result.accepted
        ],
        rejected=[
            RejectedReceiptOut(
                index=r.index,
                reference=r.reference,
                status=r.status,
                detail=r.detail,
                errors=[ProblemItem(detail=e.detail, pointer=e.pointer) for e in r.errors],
            )
            for r in result.rejected
        ],
    )
