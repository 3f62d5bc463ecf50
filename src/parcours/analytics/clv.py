"""Customer lifetime value: BG/NBD for how many purchases a customer will still make, and
Gamma-Gamma for how much each will be worth (Fader, Hardie & Lee, 2005).

Why our own code: the maintained library (pymc-marketing) needs Python >= 3.12 since
0.19.3 and brings PyMC and PyTensor, which compile C code on first use, for two
closed-form likelihoods; `lifetimes` is unmaintained (our tests use it as a reference
only). Both likelihoods are short, published formulas: they are written here with scipy.special,
vectorised over customers (identical histories weighted once), and maximised with
scipy.optimize on log-parameters. They are checked against the published CDNOW
estimates (tests/analytics/test_clv.py).

Per customer, from purchase days (several orders on one day are one purchase):
`frequency` x = repeat purchase days, `recency` t_x = days from first to last purchase,
`age` T = days from first purchase to `as_of`, `monetary` = mean value of the repeat
purchases (cents). The time unit of the fits is the day (CDNOW's tests use weeks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from parcours.core.errors import FieldError, InvalidInput

Array = npt.NDArray[np.float64]
DAYS_PER_MONTH = 30
MIN_CUSTOMERS = 20
MIN_REPEAT_BUYERS = 5


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD parameters: purchase rates ~ Gamma(r, alpha), dropout ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma spend parameters (p, q, v)."""

    p: float
    q: float
    v: float
    log_likelihood: float


def _weighted(*columns: Sequence[float] | Array) -> tuple[list[Array], Array]:
    """Unique rows of the columns and how many times each occurs (fits run on those)."""
    stacked = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(np.float64)


def bgnbd_log_likelihood(params: Sequence[float] | Array, x: Array, t_x: Array, t: Array) -> Array:
    """Each customer's BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b)
    a2 = a2 - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + t)
    repeat = x > 0
    a4 = np.full_like(x, -np.inf)
    a4[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    result: Array = a1 + a2 + np.logaddexp(a3, a4)
    return result


def fit_bgnbd(
    frequency: Sequence[float] | Array,
    recency: Sequence[float] | Array,
    age: Sequence[float] | Array,
) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for customers (x, t_x, T)."""
    (x, t_x, t), weight = _weighted(frequency, recency, age)

    def negative(log_params: Array) -> float:
        value = bgnbd_log_likelihood(np.exp(log_params), x, t_x, t)
        return float(-(weight * value).sum())

    best = optimize.minimize(negative, np.zeros(4), method="Nelder-Mead",
                             options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9})  # fmt: skip
    r, alpha, a, b = np.exp(best.x)
    return BgNbd(float(r), float(alpha), float(a), float(b), float(-best.fun))


def expected_purchases(
    model: BgNbd, horizon: float | Array, x: Array, t_x: Array, t: Array
) -> Array:
    """Expected purchases in the next `horizon` time units of customers (x, t_x, T)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    h = np.asarray(horizon, dtype=np.float64)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, h / (alpha + t + h))
    first = (a + b + x - 1) / (a - 1)
    second = 1 - ((alpha + t) / (alpha + t + h)) ** (r + x) * hyp
    result: Array = first * second / _alive_denominator(model, x, t_x, t)
    return result


def expected_purchases_new(model: BgNbd, horizon: float | Array) -> Array:
    """Expected repeat purchases in `horizon` of a customer who just made a first one."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    h = np.asarray(horizon, dtype=np.float64)
    hyp = special.hyp2f1(r, b, a + b - 1, h / (alpha + h))
    result: Array = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + h)) ** r * hyp)
    return result


def probability_alive(model: BgNbd, x: Array, t_x: Array, t: Array) -> Array:
    """The probability each customer (x, t_x, T) is still buying."""
    result: Array = 1 / _alive_denominator(model, x, t_x, t)
    return result


def _alive_denominator(model: BgNbd, x: Array, t_x: Array, t: Array) -> Array:
    ratio = (model.alpha + t) / (model.alpha + t_x)
    odds = np.where(
        x > 0, model.a / np.maximum(model.b + x - 1, 1e-12) * ratio ** (model.r + x), 0.0
    )
    result: Array = 1 + odds
    return result


def gamma_gamma_log_likelihood(params: Sequence[float] | Array, x: Array, m: Array) -> Array:
    """Each repeat buyer's Gamma-Gamma log-likelihood of its mean spend `m` over x
    purchases (Fader, Hardie & Lee 2005, 'RFM and CLV')."""
    p, q, v = params
    px = p * x
    result: Array = (
        special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
        + q * np.log(v) + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v)
    )  # fmt: skip
    return result


def fit_gamma_gamma(
    frequency: Sequence[float] | Array, monetary: Sequence[float] | Array
) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from repeat buyers (x > 0, mean > 0).

    Spend is fitted in units of its mean (p and q do not depend on the unit, v scales
    with it): from cents, the optimiser would start thousands of units away from the
    optimum and stop on a ridge (p in the tens of thousands)."""
    x_all, m_all = np.asarray(frequency, np.float64), np.asarray(monetary, np.float64)
    keep = (x_all > 0) & (m_all > 0)
    scale = float(m_all[keep].mean()) if keep.any() else 1.0
    (x, m), weight = _weighted(x_all[keep], m_all[keep] / scale)

    def negative(log_params: Array) -> float:
        value = gamma_gamma_log_likelihood(np.exp(log_params), x, m)
        return float(-(weight * value).sum())

    best = optimize.minimize(negative, np.zeros(3), method="Nelder-Mead",
                             options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9})  # fmt: skip
    p, q, v = np.exp(best.x)
    # The likelihood of the spend in its own unit: each density shrinks by the scale.
    log_likelihood = -best.fun - weight.sum() * np.log(scale)
    return GammaGamma(float(p), float(q), float(v) * scale, float(log_likelihood))


def expected_spend(model: GammaGamma, x: Array, m: Array) -> Array:
    """Expected value of a customer's future purchases: the population mean for a
    one-time buyer, shrunk towards its own mean `m` as its repeat purchases x grow."""
    p, q, v = model.p, model.q, model.v
    result: Array = p * (v + x * m) / (p * x + q - 1)
    return result


# ------------------------------------------------------------------ Parcours customers


@dataclass(frozen=True)
class ClvQuery:
    """`as_of` (UTC): the end of the history; `months`: the horizon; `monthly_discount`:
    the discount rate per month (0.01 = 1 %)."""

    as_of: datetime
    months: int = 12
    monthly_discount: float = 0.01

    def check(self) -> None:
        if not 1 <= self.months <= 120:
            raise InvalidInput(
                "months must be between 1 and 120.",
                [FieldError("between 1 and 120", parameter="months")],
            )
        if not 0 <= self.monthly_discount < 1:
            raise InvalidInput(
                "The monthly discount rate is a fraction between 0 and 1 (0.01 = 1 %).",
                [FieldError("between 0 and 1", parameter="discount")],
            )


@dataclass(frozen=True)
class Summary:
    """Per customer: x, t_x and T in days, mean repeat spend (cents)."""

    customers: list[str]
    frequency: Array
    recency: Array
    age: Array
    monetary: Array


def summarise(rows: Sequence[dict[str, Any]], as_of: datetime) -> Summary:
    """A Summary from purchase days (`customer`, `day` as a date or datetime, `amount`
    in cents of that day), days after `as_of` left out."""
    import pandas as pd  # type: ignore[import-untyped]

    frame = pd.DataFrame(list(rows), columns=["customer", "day", "amount"])
    frame["day"] = pd.to_datetime(frame["day"], utc=True).dt.tz_localize(None).dt.normalize()
    end = pd.Timestamp(as_of.replace(tzinfo=None)).normalize()
    frame = frame[frame["day"] <= end].sort_values(["customer", "day"])
    frame = frame.groupby(["customer", "day"], as_index=False)["amount"].sum()
    groups = frame.groupby("customer")
    first, last = groups["day"].min(), groups["day"].max()
    count = groups["day"].count()
    first_amount = groups["amount"].first()
    total = groups["amount"].sum()
    x = (count - 1).to_numpy(np.float64)
    repeat_total = (total - first_amount).to_numpy(np.float64)
    monetary = np.divide(repeat_total, x, out=np.zeros_like(x), where=x > 0)
    return Summary(
        customers=[str(c) for c in count.index],
        frequency=x,
        recency=(last - first).dt.days.to_numpy(np.float64),
        age=(end - first).dt.days.to_numpy(np.float64),
        monetary=monetary,
    )


def customer_values(summary: Summary, query: ClvQuery) -> list[dict[str, Any]]:
    """Fit both models on the customers and value each one over the horizon: expected
    purchases, expected spend per purchase and CLV (cents, discounted monthly)."""
    query.check()
    if not summary.customers:
        return []
    repeaters = int((summary.frequency > 0).sum())
    if len(summary.customers) < MIN_CUSTOMERS or repeaters < MIN_REPEAT_BUYERS:
        raise InvalidInput(
            f"Lifetime value needs at least {MIN_CUSTOMERS} customers of whom "
            f"{MIN_REPEAT_BUYERS} bought twice; there are {len(summary.customers)} "
            f"and {repeaters}."
        )
    x, t_x, t, m = summary.frequency, summary.recency, summary.age, summary.monetary
    bgnbd = fit_bgnbd(x, t_x, t)
    spend = expected_spend(fit_gamma_gamma(x, m), x, m)
    clv = np.zeros_like(x)
    previous = np.zeros_like(x)
    for month in range(1, query.months + 1):
        upto = expected_purchases(bgnbd, month * DAYS_PER_MONTH, x, t_x, t)
        clv += (upto - previous) * spend / (1 + query.monthly_discount) ** month
        previous = upto
    alive = probability_alive(bgnbd, x, t_x, t)
    return [
        {
            "customer": customer,
            "frequency": int(x[i]),
            "recency_days": int(t_x[i]),
            "age_days": int(t[i]),
            "average_spend": round(float(m[i])),
            "probability_alive": round(float(alive[i]), 6),
            "expected_purchases": round(float(previous[i]), 6),
            "expected_spend": round(float(spend[i])),
            "clv": round(float(clv[i])),
        }
        for i, customer in enumerate(summary.customers)
    ]


def purchase_days(engine: Any, as_of: datetime) -> list[dict[str, Any]]:
    """(customer, day, amount in cents) from the `orders` fact on an engine: orders with
    a customer, not cancelled, less refunds, up to `as_of`."""
    orders = engine.facts.orders
    bought = orders.filter(
        orders.customer.notnull(), ~orders.cancelled, orders.placed_at <= as_of.replace(tzinfo=None)
    )
    daily = (
        bought.mutate(day=bought.placed_at.date())
        .group_by(["customer", "day"])
        .aggregate(amount=(bought.total - bought.refunded.fill_null(0)).sum().cast("int64"))
    )
    rows: list[dict[str, Any]] = engine.rows(daily)
    return rows


def clv(engine: Any, query: ClvQuery) -> list[dict[str, Any]]:
    """Each buying customer's lifetime value on an engine (see `customer_values`)."""
    query.check()
    return customer_values(summarise(purchase_days(engine, query.as_of), query.as_of), query)
