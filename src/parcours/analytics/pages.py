"""Console dashboards of the insight context: channel and store KPIs, funnels, paths,
attribution, cohorts and lifetime value. Each page has the same filter bar, charts drawn
by the vendored ECharts, drill-down links and CSV downloads of its tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.analytics import charts, reports
from parcours.analytics.attribution_report import acquisition_report, attribution_report
from parcours.analytics.clv import ClvQuery, clv
from parcours.analytics.cohorts import CohortQuery, retention
from parcours.analytics.dashboard import (
    Filters,
    console_engine,
    csv_response,
    format_value,
    read_filters,
)
from parcours.analytics.engines import Engine
from parcours.analytics.funnels import BREAKDOWNS, FunnelStep, custom_steps, funnel, journey_steps
from parcours.analytics.metrics import METRICS, kpis
from parcours.analytics.names import MODELS
from parcours.analytics.paths import conversion_paths, sankey, top_paths
from parcours.analytics.rfm import SEGMENT_NAMES, RfmQuery, rfm, segment_summary
from parcours.core.deps import ClockDep, DatabaseDep, DbSession, SettingsDep
from parcours.core.errors import InvalidInput, ParcoursError
from parcours.core.i18n import gettext
from parcours.web.console import (
    Console,
    ConsoleContext,
    VerifiedConsole,
    render,
    require_role,
)

router = APIRouter(prefix="/console/insight", include_in_schema=False)
ROLES = ("admin", "marketer")

TILES = (
    "sales",
    "orders",
    "average_basket",
    "items_per_basket",
    "returns_rate",
    "conversion_rate",
    "bounce_rate",
    "cart_abandonment_rate",
    "store_conversion",
    "impulse_share",
    "omnichannel_share",
)
STORE_COLUMNS = ("store", "sales", "orders", "average_basket", "footfall", "store_conversion")
CHANNEL_COLUMNS = ("channel", "sales", "orders", "average_basket", "units", "returns_rate")
CATEGORY_COLUMNS = ("category", "sales", "units", "returns_rate", "impulse_share")
MODE_SHARES = (
    ("click_collect_share", "Click & collect"),
    ("drive_share", "Drive"),
    ("delivery_share", "Delivery"),
)
SEGMENTS = ("omnichannel", "single_channel")
SEGMENT_FIGURES = ("customers", "revenue", "orders_per_customer", "revenue_per_customer")


def _rows(engine: Engine, names: list[str], filters: Filters, *dims: str) -> list[dict[str, Any]]:
    return kpis(engine, names, filters.query(*dims)) if names else []


# The overview's tables by dimension: their columns (the dimension first), also offered
# as CSV downloads.
TABLES = {
    "channels": CHANNEL_COLUMNS,
    "stores": STORE_COLUMNS,
    "categories": CATEGORY_COLUMNS,
}


def _table(engine: Engine, filters: Filters, name: str) -> list[dict[str, Any]]:
    dimension = TABLES[name][0]
    return _rows(engine, filters.applicable(TABLES[name][1:], dimension), filters, dimension)


def _overview(engine: Engine, filters: Filters) -> dict[str, Any]:
    totals = _rows(engine, filters.applicable(TILES), filters)
    trend = _rows(engine, ["sales"], filters, "period", "channel")
    shares = _rows(engine, filters.applicable(tuple(n for n, _ in MODE_SHARES)), filters)
    segments = filters.applicable(tuple(f"{s}_{f}" for s in SEGMENTS for f in SEGMENT_FIGURES))
    return {
        "totals": totals[0] if totals else {},
        **{name: _table(engine, filters, name) for name in TABLES},
        "trend": trend,
        "shares": shares[0] if shares else {},
        "segments": (_rows(engine, segments, filters) or [{}])[0],
    }


def _trend_chart(trend: list[dict[str, Any]]) -> dict[str, Any]:
    periods = sorted({str(row["period"]) for row in trend})
    by_channel: dict[str, dict[str, Any]] = {}
    for row in trend:
        by_channel.setdefault(row["channel"] or "?", {})[str(row["period"])] = row["sales"]
    series = {
        channel: [(values.get(p) or 0) / 100 for p in periods]
        for channel, values in sorted(by_channel.items())
    }
    return charts.line_chart(periods, series)


@router.get("", response_class=HTMLResponse)
def overview_page(
    request: Request,
    context: Console,
    database: DatabaseDep,
    settings: SettingsDep,
    download: str = "",
) -> Response:
    """Sales, baskets, conversion and store KPIs for a period, by channel, store and
    category; `download=channels|stores|categories` gives a table as CSV."""
    require_role(context, *ROLES)
    filters = read_filters(request, context.now.date())
    if download in TABLES:  # only that table is computed
        with console_engine(database, settings) as engine:
            rows = _table(engine, filters, download)
        return csv_response(f"{download}.csv", TABLES[download], rows)
    with console_engine(database, settings) as engine:
        data = _overview(engine, filters)
    return render(
        request,
        context,
        "analytics/overview.html",
        filters=filters,
        data=data,
        tiles=[name for name in TILES if name in data["totals"]],
        metrics=METRICS,
        fmt=lambda value, name: format_value(value, METRICS[name].unit, context.locale),
        columns=TABLES,
        trend_chart=_trend_chart(data["trend"]),
        store_chart=_store_chart(data["stores"]),
        share_chart=_share_chart(data["shares"], context),
        segments=SEGMENTS,
        segment_figures=SEGMENT_FIGURES,
    )


def _store_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(rows, key=lambda r: r.get("sales") or 0, reverse=True)[:15]
    return charts.bar_chart(
        [str(r["store"] or "—") for r in ranked], [(r.get("sales") or 0) / 100 for r in ranked]
    )


def _share_chart(shares: dict[str, Any], context: ConsoleContext) -> dict[str, Any]:
    items = [(gettext(context.locale, label), shares.get(name) or 0) for name, label in MODE_SHARES]
    return charts.pie_chart([(label, round(value * 100, 1)) for label, value in items])


# ------------------------------------------------------------------ funnels and paths


def _funnel_steps(text: str) -> list[FunnelStep]:
    """The journey's five stages, or the custom steps typed one event name per line."""
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return custom_steps(names) if names else journey_steps()


@router.get("/funnel", response_class=HTMLResponse)
def funnel_page(
    request: Request,
    context: Console,
    database: DatabaseDep,
    settings: SettingsDep,
    steps: str = "",
    by: str = "",
    window_days: int = 30,
    download: str = "",
) -> Response:
    """The five-stage journey funnel (or custom steps) with a breakdown."""
    require_role(context, *ROLES)
    filters = read_filters(request, context.now.date())
    chosen = _funnel_steps(steps)
    query = filters.query()
    with console_engine(database, settings) as engine:
        overall = funnel(engine, chosen, query, timedelta(days=window_days))
        split = funnel(engine, chosen, query, timedelta(days=window_days), by) if by else []
    if download == "funnel":
        columns = ([by] if by else []) + ["step", "name", "visitors", "conversion"]
        return csv_response("funnel.csv", columns, split or overall)
    labels = [gettext(context.locale, row["name"]) for row in overall]
    return render(
        request,
        context,
        "analytics/funnel.html",
        filters=filters,
        rows=overall,
        split=split,
        by=by,
        breakdowns=BREAKDOWNS,
        steps_text=steps,
        window_days=window_days,
        chart=charts.funnel_chart(
            [(label, r["visitors"]) for label, r in zip(labels, overall, strict=True)]
        ),
        percent=lambda value: format_value(value, "fraction", context.locale),
    )


@router.get("/paths", response_class=HTMLResponse)
def paths_page(
    request: Request,
    context: Console,
    database: DatabaseDep,
    settings: SettingsDep,
    download: str = "",
) -> Response:
    """The most frequent paths to conversion across channels, offline touches included."""
    require_role(context, *ROLES)
    filters = read_filters(request, context.now.date())
    with console_engine(database, settings) as engine:
        found = conversion_paths(engine, filters.query())
    rows = top_paths(found, limit=25)
    if download == "paths":
        return csv_response("paths.csv", ("path", "conversions", "value", "share"), rows)
    flows = sankey(found, limit=25)
    chart = charts.sankey_chart(
        [node["name"] for node in flows["nodes"]],
        [(link["source"], link["target"], link["value"]) for link in flows["links"]],
    )
    return render(
        request,
        context,
        "analytics/paths.html",
        filters=filters,
        rows=rows,
        chart=chart,
        money=lambda cents: format_value(cents, "cents", context.locale),
        percent=lambda value: format_value(value, "fraction", context.locale),
    )


# ------------------------------------------------------------------ attribution


@router.get("/attribution", response_class=HTMLResponse)
def attribution_page(
    request: Request,
    context: Console,
    database: DatabaseDep,
    settings: SettingsDep,
    order: int = 1,
    lookback_days: int = 30,
    download: str = "",
) -> Response:
    """Credit per channel under every model side by side, and new customers by month
    and first-touch channel."""
    require_role(context, *ROLES)
    filters = read_filters(request, context.now.date())
    lookback = timedelta(days=lookback_days)
    with console_engine(database, settings) as engine:
        credit = attribution_report(engine, filters.query(), MODELS, order, lookback)
        acquired = acquisition_report(engine, filters.query(), lookback)
    if download == "attribution":
        columns = ["channel", *(f"{m}_{k}" for m in MODELS for k in ("conversions", "value"))]
        return csv_response("attribution.csv", columns, credit)
    if download == "acquisition":
        return csv_response(
            "acquisition.csv", ("month", "channel", "customers", "revenue"), acquired
        )
    chart = charts.grouped_bar_chart(
        [gettext(context.locale, row["channel"]) for row in credit],
        {
            gettext(context.locale, model): [
                round(row[f"{model}_conversions"], 2) for row in credit
            ]
            for model in MODELS
        },
    )
    return render(
        request,
        context,
        "analytics/attribution.html",
        filters=filters,
        models=MODELS,
        credit=credit,
        acquired=acquired,
        order=order,
        lookback_days=lookback_days,
        chart=chart,
        money=lambda cents: format_value(cents, "cents", context.locale),
        credited=lambda value: format_value(round(value, 1), "", context.locale),
    )


# ------------------------------------------------------------------ customer value


def _retention_chart(
    rows: list[dict[str, Any]], months: int, label: Callable[[str], str] = str
) -> dict[str, Any]:
    cohorts = sorted({str(row["cohort"]) for row in rows})
    cells: dict[tuple[str, int], float] = {
        (str(row["cohort"]), int(row["month"])): row["retention"] for row in rows
    }
    return charts.heatmap_chart(
        [str(m) for m in range(months + 1)],
        [label(c) for c in cohorts],
        [[cells.get((c, m)) for m in range(months + 1)] for c in cohorts],
    )


def _lifetime_values(engine: Engine, filters: Filters) -> tuple[list[dict[str, Any]], str]:
    """Each customer's value, or no rows and the reason (too little history to fit)."""
    query = ClvQuery(as_of=filters.query().end or datetime.now(UTC), months=12)
    try:
        return clv(engine, query), ""
    except InvalidInput as exc:
        return [], exc.detail


@router.get("/value", response_class=HTMLResponse)
def value_page(
    request: Request,
    context: Console,
    database: DatabaseDep,
    settings: SettingsDep,
    months: int = 12,
    download: str = "",
) -> Response:
    """Retention by first-purchase month and channel, RFM segments and lifetime value."""
    require_role(context, *ROLES)
    filters = read_filters(request, context.now.date())
    scope = filters.query()
    with console_engine(database, settings) as engine:
        by_month = retention(engine, CohortQuery("month", months, scope.start, scope.end))
        by_channel = retention(engine, CohortQuery("channel", months, scope.start, scope.end))
        scored = rfm(engine, RfmQuery(as_of=scope.end or context.now))
        values, clv_problem = _lifetime_values(engine, filters)
    if download in ("rfm", "clv"):
        rows = scored if download == "rfm" else values
        return csv_response(f"{download}.csv", list(rows[0]) if rows else ["customer"], rows)
    segments = segment_summary(scored)
    ranked = sorted(values, key=lambda row: row["clv"], reverse=True)
    return render(
        request,
        context,
        "analytics/value.html",
        filters=filters,
        months=months,
        month_chart=_retention_chart(by_month, months),
        channel_chart=_retention_chart(
            by_channel, months, lambda code: gettext(context.locale, code)
        ),
        has_cohorts=bool(by_month),
        segments=segments,
        segment_chart=charts.bar_chart(
            [gettext(context.locale, row["segment"]) for row in segments],
            [row["customers"] for row in segments],
        ),
        top=ranked[:20],
        total_clv=sum(row["clv"] for row in values),
        valued=len(values),
        clv_problem=clv_problem,
        money=lambda cents: format_value(cents, "cents", context.locale),
        percent=lambda value: format_value(value, "fraction", context.locale),
    )


# ------------------------------------------------------------------ report emails


def _reports_page(
    request: Request,
    context: ConsoleContext,
    session: DbSession,
    error: ParcoursError | None = None,
) -> Response:
    return render(
        request,
        context,
        "analytics/reports.html",
        status_code=422 if error else 200,
        subscriptions=reports.subscriptions(session),
        frequencies=reports.FREQUENCIES,
        error=error,
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, context: Console, session: DbSession) -> Response:
    """Who receives the weekly or monthly KPI email."""
    require_role(context, *ROLES)
    return _reports_page(request, context, session)


@router.post("/reports", response_class=HTMLResponse)
async def add_report(
    request: Request, context: VerifiedConsole, session: DbSession, clock: ClockDep
) -> Response:
    actor = require_role(context, *ROLES)
    form = await request.form()
    try:
        with session.begin_nested():
            reports.subscribe(
                session,
                str(form.get("email", "")),
                str(form.get("frequency", "")),
                locale=str(form.get("locale", context.locale)),
                channel=str(form.get("channel", "")).strip()[:24],
                store=str(form.get("store", "")).strip()[:32],
                created_by=actor.label,
                now=clock.now(),
            )
    except ParcoursError as exc:
        return _reports_page(request, context, session, error=exc)
    return RedirectResponse("/console/insight/reports", status_code=303)


@router.post("/reports/{subscription_id}/remove")
def remove_report(
    subscription_id: uuid.UUID, context: VerifiedConsole, session: DbSession
) -> Response:
    require_role(context, *ROLES)
    reports.unsubscribe(session, subscription_id)
    return RedirectResponse("/console/insight/reports", status_code=303)


def console_msgids() -> set[str]:
    """The words these pages pass to `_()` from Python data (metric names and
    descriptions, grains, breakdowns, stages, segments), for the translation tests."""
    from parcours.analytics.funnels import STAGES

    columns = {c for cols in (STORE_COLUMNS, CHANNEL_COLUMNS, CATEGORY_COLUMNS) for c in cols}
    return (
        set(METRICS)
        | {metric.description for metric in METRICS.values()}
        | columns
        | {"day", "week", "month"}
        | set(reports.FREQUENCIES)
        | set(BREAKDOWNS)
        | set(STAGES)
        | set(SEGMENTS)
        | set(SEGMENT_FIGURES)
        | {label for _, label in MODE_SHARES}
        | set(MODELS)
        | set(SEGMENT_NAMES)
    )
