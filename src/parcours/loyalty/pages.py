"""Console pages of the loyalty context: offers and codes (`/console/activation/offers`)
and the loyalty programme with a member's points (`/console/activation/loyalty`)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from parcours import customers
from parcours.core.deps import DbSession
from parcours.core.errors import InvalidInput, ParcoursError, Refused, refusal
from parcours.core.i18n import translations
from parcours.core.money import Money
from parcours.loyalty import offers, programme, promotions
from parcours.loyalty.models import PROMOTION_KINDS, REWARD_KINDS
from parcours.web.console import Console, ConsoleContext, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/activation", include_in_schema=False)
MARKETERS = ("admin", "marketer")
COUNTER = ("admin", "marketer", "staff")
KIND_LABELS = {
    "percent_off": "Percentage off",
    "amount_off": "Amount off",
    "buy_x_get_y": "Buy X get Y",
    "free_delivery": "Free delivery",
}
ENTRY_LABELS = {
    "earn": "Earned",
    "redeem": "Reward",
    "expire": "Expired",
    "adjust": "Adjustment",
    "reversal": "Taken back",
}
REWARD_LABELS = {"promo_code": "A promo code", "discount": "A discount now"}
CURRENCY = "EUR"  # the till's currency; the programme's rewards are in euros too
NO_MEMBER = "No customer matches this id, email or phone."
NO_CODE = "Give a code and the basket total."
A_CODE = "a code"
EUROS = "euros, 0 or more"
# What the services refuse, shown by these pages with `said(...)` in the reader's language.
SERVICE_MESSAGES = (*programme.MESSAGES, *offers.MESSAGES, *promotions.MESSAGES)
CODE_REFUSALS = (
    offers.UNKNOWN, offers.MISTYPED, offers.EXPIRED, offers.USED, offers.USED_UP,
    offers.NOT_YOURS, offers.LOG_IN, offers.CUSTOMER_CAP, offers.TWICE,
    *promotions.REFUSALS,
)  # fmt: skip
CONSOLE_MSGIDS = (
    *KIND_LABELS.values(), *ENTRY_LABELS.values(), *REWARD_LABELS.values(), NO_MEMBER,
    NO_CODE, A_CODE, EUROS, *SERVICE_MESSAGES, *CODE_REFUSALS,
)  # fmt: skip


def why_refused(locale: str, check: offers.CodeCheck, currency: str) -> str:
    """Why a code is refused, in the reader's language."""
    gettext = translations(locale).gettext
    promotion = check.promotion
    if promotion is not None:
        minimum = Money(promotion.min_subtotal, currency)
        if check.message == promotions.BELOW_MINIMUM % {"minimum": minimum}:
            return gettext(promotions.BELOW_MINIMUM) % {"minimum": minimum.format(locale)}
    return gettext(check.message)


def _int(value: Any, default: int | None = None) -> int | None:
    text = str(value or "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        return -1  # refused by the service with the field named


# ------------------------------------------------------------------ offers


def _offers_page(
    request: Request,
    context: ConsoleContext,
    session: DbSession,
    error: ParcoursError | None = None,
    batch: uuid.UUID | None = None,
) -> Response:
    summaries = promotions.list_promotions(session)
    issued = offers.redemption_counts(session, [s.promotion.id for s in summaries])
    return render(
        request,
        context,
        "loyalty/offers.html",
        status_code=422 if error else 200,
        summaries=summaries,
        issued=issued,
        kinds=PROMOTION_KINDS,
        kind_labels=KIND_LABELS,
        error=error,
        batch=batch,
        batch_key=request.query_params.get("promotion", ""),
    )


@router.get("/offers", response_class=HTMLResponse)
def offers_page(request: Request, context: Console, session: DbSession) -> Response:
    """Promotions with their codes and redemptions; create one, generate codes."""
    require_role(context, *MARKETERS)
    batch = request.query_params.get("batch")
    return _offers_page(request, context, session, batch=uuid.UUID(batch) if batch else None)


@router.post("/offers", response_class=HTMLResponse)
async def create_offer(request: Request, context: VerifiedConsole, session: DbSession) -> Response:
    require_role(context, *MARKETERS)
    form = await request.form()
    kind = str(form.get("kind", ""))
    value = _int(form.get("value"))
    data: dict[str, Any] = {
        "key": str(form.get("key", "")).strip(),
        "name_fr": str(form.get("name_fr", "")),
        "name_en": str(form.get("name_en", "")),
        "kind": kind,
        "percent_bp": value * 100 if kind == "percent_off" and value is not None else None,
        "amount_off": value if kind == "amount_off" else None,
        "buy_quantity": _int(form.get("buy_quantity"), 2),
        "get_quantity": _int(form.get("get_quantity"), 1),
        "min_subtotal": _int(form.get("min_subtotal"), 0),
        "skus": [s.strip() for s in str(form.get("skus", "")).split(",") if s.strip()],
        "categories": [s.strip() for s in str(form.get("categories", "")).split(",") if s.strip()],
        "channels": [str(c) for c in form.getlist("channels")],
        "automatic": form.get("automatic") == "on",
    }
    try:
        with session.begin_nested():
            promotions.add_promotion(session, context.now, data)
    except ParcoursError as exc:
        return _offers_page(request, context, session, error=exc)
    return RedirectResponse("/console/activation/offers", status_code=303)


@router.post("/offers/{key}/codes", response_class=HTMLResponse)
async def generate(
    key: str, request: Request, context: VerifiedConsole, session: DbSession
) -> Response:
    require_role(context, *MARKETERS)
    form = await request.form()
    try:
        with session.begin_nested():
            batch = offers.generate_codes(
                session, context.now, key, _int(form.get("count"), 0) or 0,
                prefix=str(form.get("prefix", "")).strip(),
                valid_days=_int(form.get("valid_days")),
            )  # fmt: skip
    except ParcoursError as exc:
        return _offers_page(request, context, session, error=exc)
    return RedirectResponse(
        f"/console/activation/offers?batch={batch.id}&promotion={key}", status_code=303
    )


@router.get("/offers/{key}/codes.csv")
def download(key: str, batch: uuid.UUID, context: Console, session: DbSession) -> Response:
    """The batch's codes as CSV (streamed)."""
    require_role(context, *MARKETERS)
    promotions.get_promotion(session, key)
    rows = ["code\n", *(f"{code}\n" for code in offers.batch_codes(session, batch))]
    return StreamingResponse(
        iter(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{key}-{batch}.csv"'},
    )


# ------------------------------------------------------------------ loyalty


def _find_member(session: DbSession, text: str) -> uuid.UUID | None:
    text = text.strip()
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    kind = "email" if "@" in text else "phone"
    try:
        return customers.resolve(session, kind, text)
    except InvalidInput:
        return None


def _loyalty_page(
    request: Request,
    context: ConsoleContext,
    session: DbSession,
    member: uuid.UUID | None = None,
    error: ParcoursError | None = None,
    given: programme.RewardGiven | None = None,
    checked: dict[str, Any] | None = None,
) -> Response:
    status = programme.points_balance(session, context.now, member) if member else None
    can_edit = context.user is not None and context.user.role in MARKETERS
    return render(
        request,
        context,
        "loyalty/loyalty.html",
        status_code=422 if error else 200,
        settings=programme.programme(session),
        can_edit=can_edit,
        query=request.query_params.get("q", ""),
        member=member,
        status=status,
        entries=programme.recent_entries(session, member) if member else [],
        entry_labels=ENTRY_LABELS,
        rewards=programme.list_rewards(session, active_only=True),
        catalogue=programme.list_rewards(session) if can_edit else [],
        reward_kinds=REWARD_KINDS,
        reward_labels=REWARD_LABELS,
        promotions=[s.promotion for s in promotions.list_promotions(session)] if can_edit else [],
        error=error,
        given=given,
        checked=checked,
    )


@router.get("/loyalty", response_class=HTMLResponse)
def loyalty_page(request: Request, context: Console, session: DbSession) -> Response:
    """The programme's settings; a member's balance, tier and ledger; rewards."""
    require_role(context, *COUNTER)
    query = request.query_params.get("q", "")
    member = _find_member(session, query)
    if query and member is None:
        error = Refused(NO_MEMBER)
        return _loyalty_page(request, context, session, error=error)
    return _loyalty_page(request, context, session, member)


@router.post("/loyalty/settings", response_class=HTMLResponse)
async def save_settings(request: Request, context: VerifiedConsole, session: DbSession) -> Response:
    require_role(context, *MARKETERS)
    form = await request.form()
    tiers = [dict(t) for t in programme.programme(session).tiers]
    for tier in tiers:
        tier["min_points"] = _int(form.get(f"tier_{tier['key']}"), tier["min_points"])
    changes = {
        "points_per_euro": _int(form.get("points_per_euro")),
        "expiry_months": _int(form.get("expiry_months")),
        "enabled": form.get("enabled") == "on",
        "tiers": tiers,
    }
    try:
        with session.begin_nested():
            programme.update_programme(session, context.now, changes)
    except ParcoursError as exc:
        return _loyalty_page(request, context, session, error=exc)
    return RedirectResponse("/console/activation/loyalty", status_code=303)


def _store_of(context: ConsoleContext) -> uuid.UUID | None:
    """The store of staff who work in exactly one."""
    store_ids = list(getattr(context.user, "store_ids", None) or [])
    if len(store_ids) == 1 and _is_uuid(store_ids[0]):
        return uuid.UUID(str(store_ids[0]))
    return None


@router.post("/loyalty/codes", response_class=HTMLResponse)
async def check_code(request: Request, context: VerifiedConsole, session: DbSession) -> Response:
    """At the till: may this promo code be used on a basket of this total (euros)? Nothing
    changes; the refusal says why, in the reader's language."""
    require_role(context, *COUNTER)
    form = await request.form()
    typed = str(form.get("code", "")).strip()
    try:
        total = round(float(str(form.get("total") or "0").replace(",", ".")) * 100)
    except ValueError:
        total = -1
    if not typed or total < 0:
        error = Refused(
            NO_CODE, [refusal(A_CODE, parameter="code"), refusal(EUROS, parameter="total")]
        )
        return _loyalty_page(request, context, session, error=error)
    basket = promotions.Basket("store", CURRENCY, (), _store_of(context), None, total)
    check = offers.check_code(session, context.now, typed, basket)
    shown = {
        "code": check.code,
        "valid": check.valid,
        "reason": check.reason,
        "message": "" if check.valid else why_refused(context.locale, check, CURRENCY),
        "discount": Money(check.discount, CURRENCY).format(context.locale),
        "free_delivery": check.free_delivery,
    }
    return _loyalty_page(request, context, session, checked=shown)


def _reward_changes(form: Any) -> dict[str, Any]:
    """The reward form's fields the marketer filled (cents for the discount)."""
    changes: dict[str, Any] = {
        name: str(form.get(name, "")) for name in ("name_fr", "name_en") if name in form
    }
    for name in ("points_cost", "amount_off"):
        if str(form.get(name) or "").strip():
            changes[name] = _int(form.get(name))
    return changes


@router.post("/loyalty/rewards", response_class=HTMLResponse)
async def create_reward(request: Request, context: VerifiedConsole, session: DbSession) -> Response:
    """A marketer adds a reward to the catalogue."""
    require_role(context, *MARKETERS)
    form = await request.form()
    data = {
        **_reward_changes(form),
        "key": str(form.get("key", "")).strip(),
        "kind": str(form.get("kind", "")),
        "promotion_key": str(form.get("promotion_key", "")).strip() or None,
    }
    try:
        with session.begin_nested():
            programme.add_reward(session, context.now, data)
    except ParcoursError as exc:
        return _loyalty_page(request, context, session, error=exc)
    return RedirectResponse("/console/activation/loyalty#rewards", status_code=303)


@router.post("/loyalty/rewards/{key}", response_class=HTMLResponse)
async def edit_reward(
    key: str, request: Request, context: VerifiedConsole, session: DbSession
) -> Response:
    """A marketer renames a reward, changes its cost or discount, or (`active` = on/off)
    switches it off or back on."""
    require_role(context, *MARKETERS)
    form = await request.form()
    changes = _reward_changes(form)
    if "active" in form:
        changes["active"] = form.get("active") == "on"
    try:
        with session.begin_nested():
            programme.update_reward(session, key, changes)
    except ParcoursError as exc:
        return _loyalty_page(request, context, session, error=exc)
    return RedirectResponse("/console/activation/loyalty#rewards", status_code=303)


@router.post("/loyalty/{profile_id}/redemptions", response_class=HTMLResponse)
async def redeem(
    profile_id: uuid.UUID, request: Request, context: VerifiedConsole, session: DbSession
) -> Response:
    """Store staff give a reward to the customer in front of them."""
    require_role(context, *COUNTER)
    form = await request.form()
    store_id = _store_of(context)
    try:
        with session.begin_nested():
            given = programme.redeem_reward(
                session, context.now, profile_id, str(form.get("reward", "")), "store", store_id
            )
    except ParcoursError as exc:
        return _loyalty_page(request, context, session, profile_id, error=exc)
    return _loyalty_page(request, context, session, profile_id, given=given)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
