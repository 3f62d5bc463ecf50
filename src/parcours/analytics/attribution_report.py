"""Attribution and acquisition reports on the recorded journeys (offline touches included).

`attribution_report` takes the conversion paths that `paths.conversion_paths` builds from
the facts (web, app, email … and store visits, call-centre calls; a conversion is an
`Order Completed`), runs the chosen models on them and gives one row per channel with the
conversions (fractions of orders) and the value (integer cents, VAT included) each model
credits it. `acquisition_report` counts the customers acquired each month (their first
order, cancelled ones aside) by the channel of their first touch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

import ibis
import ibis.expr.types as ir
import numpy as np

from parcours.analytics import paths as journey_paths
from parcours.analytics.attribution import Attribution, FloatArray, Paths
from parcours.analytics.attribution import attribute as run_model
from parcours.analytics.engines import Engine
from parcours.analytics.metrics import MetricQuery, scoped
from parcours.analytics.names import MAX_ORDER, MODELS
from parcours.core.errors import FieldError, InvalidInput

DEFAULT_MODELS: Final = ("first", "last", "linear", "position", "markov")
DEFAULT_LOOKBACK: Final = journey_paths.DEFAULT_LOOKBACK
CONVERSION_DIGITS: Final = 6


def check_models(models: Sequence[str], order: int) -> None:
    """Raise InvalidInput naming `model` or `order` when a model is unknown or the Markov
    order is out of 1..MAX_ORDER."""
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        shown = ", ".join(repr(m) for m in unknown) or "none"
        raise InvalidInput(
            f"Unknown attribution model {shown}: use one or more of {', '.join(MODELS)}.",
            [FieldError(f"unknown model {m!r}", parameter="model") for m in unknown]
            or [FieldError("at least one model is needed", parameter="model")],
        )
    if not 1 <= order <= MAX_ORDER:
        raise InvalidInput(
            f"The Markov order must be between 1 and {MAX_ORDER}, not {order}.",
            [FieldError(f"must be between 1 and {MAX_ORDER}", parameter="order")],
        )


def paths_of(found: Sequence[journey_paths.ConversionPath]) -> Paths:
    """The distinct conversion paths as `Paths` (nulls kept: Markov needs them)."""
    return Paths.from_sequences(
        [p.touches for p in found],
        [p.conversions for p in found],
        [p.value for p in found],
        [p.nulls for p in found],
    )


def attribution_report(
    engine: Engine,
    query: MetricQuery,
    models: Sequence[str] = DEFAULT_MODELS,
    order: int = 1,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> list[dict[str, Any]]:
    """One row per channel touched in the range: `channel`, then for each model
    `<model>_conversions` (orders credited, a fraction) and `<model>_value` (cents,
    rounded so that each model's column adds up to the revenue of the conversions).
    Channels are sorted by the first model's conversions, most credited first; no
    journeys in the range give no rows. Time decay halves a touch's credit every 7 days
    before the purchase, on each journey's own touch times."""
    check_models(models, order)
    found = journey_paths.conversion_paths(engine, query, lookback)
    if not found:
        return []
    journeys = paths_of(found)
    total_value = int(sum(p.value for p in found))
    rows: list[dict[str, Any]] = [{"channel": channel} for channel in journeys.channels]
    for model in models:
        if model == "time_decay":
            result = _time_decay_in_days(engine, query, lookback, journeys.channels)
        else:
            result = run_model(journeys, model, order=order)
        for row, conversions, cents in zip(
            rows, result.conversions, _cents(result, total_value), strict=True
        ):
            row[f"{model}_conversions"] = round(float(conversions), CONVERSION_DIGITS) + 0.0
            row[f"{model}_value"] = int(cents)
    first = f"{models[0]}_conversions"
    return sorted(rows, key=lambda row: (-row[first], row["channel"]))


def _time_decay_in_days(
    engine: Engine, query: MetricQuery, lookback: timedelta, channels: Sequence[str]
) -> Attribution:
    """Time decay over each converting journey with its touches' ages in days, given in
    the order of `channels` (a channel seen only on journeys without purchase gets 0)."""
    converted = [j for j in journey_paths.journeys(engine, query, lookback) if j.value is not None]
    paths = Paths.from_sequences(
        [j.touches for j in converted],
        [1.0] * len(converted),
        [float(j.value or 0) for j in converted],
        ages=[j.ages_days for j in converted],
    )
    result = run_model(paths, "time_decay")
    index = {channel: i for i, channel in enumerate(paths.channels)}
    pick = [index.get(channel) for channel in channels]
    return Attribution(
        model=result.model,
        channels=tuple(channels),
        conversions=np.array([0.0 if i is None else result.conversions[i] for i in pick]),
        value=np.array([0.0 if i is None else result.value[i] for i in pick]),
    )


def _cents(result: Attribution, total: int) -> FloatArray:
    """The credited value in whole cents adding up to `total` (largest remainders get
    the leftover cents)."""
    if total <= 0 or float(result.value.sum()) <= 0:
        return np.zeros(len(result.value))
    exact = result.value * (total / float(result.value.sum()))
    whole = np.floor(exact)
    left = int(total - whole.sum())
    if left > 0:
        whole[np.argsort(-(exact - whole), kind="stable")[:left]] += 1
    return whole


# --- acquisition ---------------------------------------------------------------------


def _first_orders(engine: Engine) -> ir.Table:
    """Each customer's first order (cancelled orders aside): customer, order channel,
    placed_at and its epoch seconds, total (cents)."""
    orders = engine.facts.orders
    orders = orders.filter(~orders.cancelled & orders.customer.notnull())
    rank = ibis.row_number().over(
        group_by=orders.customer, order_by=[orders.placed_at, orders.order_id]
    )
    ranked = orders.mutate(rank=rank)
    first = ranked.filter(ranked["rank"] == 0)
    return first.select(
        "customer",
        "placed_at",
        "total",
        order_channel=first.channel,
        placed_s=first.placed_at.epoch_seconds(),
    )


def _first_touches(engine: Engine, firsts: ir.Table, lookback: timedelta) -> ir.Table:
    """Per customer, the channel of the earliest touch in the `lookback` before (or at)
    their first order."""
    touches = journey_paths.touch_table(engine.facts, MetricQuery())
    joined = touches.join(
        firsts,
        [
            touches.visitor == firsts.customer,
            touches.at_s <= firsts.placed_s,
            touches.at_s >= firsts.placed_s - int(lookback.total_seconds()),
        ],
    )
    rank = ibis.row_number().over(group_by=joined.customer, order_by=[joined.at_s, joined.seq])
    ranked = joined.select("customer", first_touch=joined.touch, rank=rank)
    return ranked.filter(ranked["rank"] == 0).select(
        touch_customer=ranked.customer, first_touch=ranked.first_touch
    )


def acquisition_report(
    engine: Engine, query: MetricQuery, lookback: timedelta = DEFAULT_LOOKBACK
) -> list[dict[str, Any]]:
    """Customers acquired per month (UTC) of their first order in [start, end) and per
    first-touch channel: the channel of their earliest touch in the `lookback` before
    that order, or the order's own channel when no touch was recorded (a walk-in store
    purchase). Rows: `month` (YYYY-MM), `channel`, `customers`, `revenue` (cents: the
    first orders' totals, VAT and delivery included); an empty range gives no rows."""
    firsts = _first_orders(engine)
    first_touch = _first_touches(engine, firsts, lookback)
    acquired = firsts.left_join(first_touch, firsts.customer == first_touch.touch_customer)
    acquired = acquired.mutate(
        channel=ibis.coalesce(acquired.first_touch, acquired.order_channel),
        month=acquired.placed_at.truncate("M"),
    )
    acquired = scoped(acquired, MetricQuery(start=query.start, end=query.end), "placed_at")
    report = acquired.group_by(["month", "channel"]).aggregate(
        customers=acquired.customer.count(), revenue=acquired.total.sum()
    )
    rows = engine.rows(report.order_by(["month", "channel"]))
    return [
        {
            "month": str(row["month"])[:7],
            "channel": row["channel"],
            "customers": int(row["customers"]),
            "revenue": int(row["revenue"] or 0),
        }
        for row in rows
    ]
