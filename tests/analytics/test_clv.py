"""Lifetime value: BG/NBD and Gamma-Gamma checked against the published CDNOW figures,
the holdout purchases predicted, and each customer valued."""

from __future__ import annotations

import importlib.metadata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parcours.analytics import clv
from parcours.core.errors import InvalidInput
from tests.analytics.value_data import duckdb_engine_of, order

CALIBRATION_END = datetime(1997, 9, 30, tzinfo=UTC)  # the end of week 39


def cdnow(name: str) -> Path:
    """A CDNOW file as the `lifetimes` wheel ships it (read, never imported)."""
    return Path(
        str(importlib.metadata.distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}"))
    )


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    raw = pd.read_csv(cdnow("CDNOW_sample.txt"), sep=r"\s+", header=None,
                      names=["id", "id2", "date", "cds", "value"], dtype={"date": str})  # fmt: skip
    return raw.assign(day=pd.to_datetime(raw.date, format="%Y%m%d", utc=True))


def test_bgnbd_finds_the_published_cdnow_parameters() -> None:
    summary = pd.read_csv(cdnow("cdnow_customers_summary.csv"))
    model = clv.fit_bgnbd(summary.frequency, summary.recency, summary["T"])
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    assert (model.r, model.alpha, model.a, model.b) == pytest.approx(
        (0.243, 4.414, 0.793, 2.426), abs=2e-3
    )
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_gamma_gamma_finds_the_published_cdnow_parameters() -> None:
    summary = pd.read_csv(cdnow("cdnow_customers_summary_with_transactions.csv"))
    model = clv.fit_gamma_gamma(summary.x, summary.zbar)
    assert (model.p, model.q, model.v) == pytest.approx((6.25, 3.74, 15.44), abs=1e-2)
    # The same spend in cents: the same p and q, v in cents.
    cents = clv.fit_gamma_gamma(summary.x, summary.zbar * 100)
    assert (cents.p, cents.q, cents.v) == pytest.approx((model.p, model.q, model.v * 100), rel=1e-4)


def test_the_holdout_purchases_are_predicted_from_the_raw_transactions(
    cdnow_sample: pd.DataFrame,
) -> None:
    days = zip(cdnow_sample.id, cdnow_sample.day, cdnow_sample.value, strict=True)
    rows = [{"customer": str(c), "day": d, "amount": round(v * 100)} for c, d, v in days]
    summary = clv.summarise(rows, CALIBRATION_END)
    weeks = summary.recency / 7, summary.age / 7
    assert (len(summary.customers), int(summary.frequency.sum())) == (2357, 2457)
    model = clv.fit_bgnbd(summary.frequency, *weeks)
    assert model.r == pytest.approx(0.243, abs=2e-3)
    # Calibration: the model's expected repeat purchases add up to those observed.
    fitted = clv.expected_purchases_new(model, summary.age / 7).sum()
    assert fitted == pytest.approx(2457, rel=0.03)
    # Holdout (weeks 40 to 78): BG/NBD's forecast against the purchase days that came.
    later = cdnow_sample[(cdnow_sample.day > CALIBRATION_END)
                         & (cdnow_sample.day <= CALIBRATION_END + timedelta(weeks=39))]  # fmt: skip
    actual = int(later.groupby("id").day.nunique().sum())
    predicted = clv.expected_purchases(model, 39, summary.frequency, *weeks).sum()
    assert actual == 1882
    assert predicted == pytest.approx(actual, rel=0.15)  # 1653: the usual slight under-forecast


def test_a_new_customer_is_a_customer_with_no_history() -> None:
    model = clv.BgNbd(0.243, 4.414, 0.793, 2.426, 0.0)
    zero = np.zeros(1)
    assert clv.expected_purchases(model, 10.0, zero, zero, zero)[0] == pytest.approx(
        float(clv.expected_purchases_new(model, 10.0))
    )
    assert clv.probability_alive(model, zero, zero, zero + 5)[0] == 1.0


def test_customers_are_valued_over_the_horizon_with_a_monthly_discount(
    cdnow_sample: pd.DataFrame,
) -> None:
    shop = [order(f"c{c}", d.strftime("%Y-%m-%dT12:00:00"), total=round(v * 100))
            for c, d, v in zip(cdnow_sample.id, cdnow_sample.day, cdnow_sample.value, strict=True)
            if d <= CALIBRATION_END]  # fmt: skip
    engine = duckdb_engine_of(shop)
    rows = clv.clv(engine, clv.ClvQuery(CALIBRATION_END, months=12, monthly_discount=0.01))
    assert len(rows) == 2357
    loyal = max(rows, key=lambda r: r["clv"])
    assert loyal["frequency"] > 5
    assert loyal["expected_purchases"] > 1
    assert all(r["clv"] >= 0 and 0 <= r["probability_alive"] <= 1 for r in rows)
    undiscounted = clv.clv(engine, clv.ClvQuery(CALIBRATION_END, months=12, monthly_discount=0))
    assert sum(r["clv"] for r in undiscounted) > sum(r["clv"] for r in rows)


def test_too_little_history_or_a_bad_horizon_is_refused() -> None:
    few = duckdb_engine_of([order("a", "2026-01-01T10:00:00"), order("a", "2026-02-01T10:00:00")])
    with pytest.raises(InvalidInput, match="at least 20 customers"):
        clv.clv(few, clv.ClvQuery(datetime(2026, 3, 1, tzinfo=UTC)))
    assert clv.clv(duckdb_engine_of([]), clv.ClvQuery(datetime(2026, 3, 1, tzinfo=UTC))) == []
    with pytest.raises(InvalidInput, match="months"):
        clv.ClvQuery(datetime(2026, 3, 1, tzinfo=UTC), months=0).check()
    with pytest.raises(InvalidInput, match="discount"):
        clv.ClvQuery(datetime(2026, 3, 1, tzinfo=UTC), monthly_discount=1.5).check()


def test_predictions_agree_with_the_lifetimes_reference_implementation() -> None:
    """`lifetimes` (unmaintained, a test dependency only) as an independent check of the
    expected purchases, the probability of being alive and the expected spend."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter  # type: ignore[import-untyped]

    summary = pd.read_csv(cdnow("cdnow_customers_summary_with_transactions.csv"))
    x, t_x, t, m = (summary[c].to_numpy(np.float64) for c in ("x", "t_x", "T", "zbar"))
    ours = clv.fit_bgnbd(x, t_x, t)
    reference = BetaGeoFitter().fit(x, t_x, t)
    for horizon in (1.0, 10.0, 52.0):
        expected = reference.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, t)
        assert clv.expected_purchases(ours, horizon, x, t_x, t) == pytest.approx(
            np.asarray(expected), rel=1e-3
        )
    alive = reference.conditional_probability_alive(x, t_x, t)
    assert clv.probability_alive(ours, x, t_x, t) == pytest.approx(np.asarray(alive), rel=1e-3)
    repeat = x > 0
    spend_model = GammaGammaFitter().fit(x[repeat], m[repeat])
    expected_spend = spend_model.conditional_expected_average_profit(x[repeat], m[repeat])
    ours_spend = clv.expected_spend(clv.fit_gamma_gamma(x, m), x[repeat], m[repeat])
    assert ours_spend == pytest.approx(np.asarray(expected_spend), rel=1e-3)
