"""Channel KPIs, each defined once as an Ibis expression over the facts.

A metric takes the facts and a `MetricQuery` (dimensions, period grain, date range,
filters) and returns an Ibis table of the dimension columns and `value`; `kpis` runs
several on an engine and merges them into plain rows. Money is integer cents (VAT
included); rates and shares are fractions (0..1); a rate whose denominator is zero is
None, never NaN. Times are UTC. Definitions are in docs/analytics-metrics.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from parcours.analytics.engines import Engine
from parcours.analytics.facts import Facts
from parcours.core.errors import FieldError, InvalidInput

DIMENSIONS = ("channel", "store", "category", "period")
GRAINS = {"day": "D", "week": "W", "month": "M"}
SESSION_GAP_S = 30 * 60  # a web or app session ends after 30 minutes without an event
IMPULSE_WINDOW_S = 7 * 24 * 3600
INTEREST_EVENTS = ("Product Viewed", "Products Searched", "Product Added")
ORDER_COMPLETED = "Order Completed"
PRODUCT_ADDED = "Product Added"
DIGITAL_CHANNELS = ("web", "app")
DELIVERY_MODES = ("home_delivery", "ship_from_store")


@dataclass(frozen=True)
class MetricQuery:
    """What to compute: `dimensions` (of DIMENSIONS), the `grain` of `period`, the date
    range [start, end) in UTC and filters (empty: no filter)."""

    dimensions: tuple[str, ...] = ()
    grain: str = "day"
    start: datetime | None = None
    end: datetime | None = None
    channels: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def filters(self) -> dict[str, tuple[str, ...]]:
        named = {"channel": self.channels, "store": self.stores, "category": self.categories}
        return {name: values for name, values in named.items() if values}


Compute = Callable[[Facts, MetricQuery], ir.Table]
Source = Callable[[Facts, MetricQuery], ir.Table]
Value = Callable[[ir.Table], Any]


@dataclass(frozen=True)
class Metric:
    name: str
    compute: Compute
    dimensions: frozenset[str]
    unit: str
    description: str
    filters: frozenset[str] = field(default=frozenset())

    def accepts(self) -> frozenset[str]:
        return self.filters or self.dimensions


@dataclass(frozen=True)
class Aggregate:
    """The `compute` of a metric that is one aggregate `value` of a `source` table (sales
    lines, sessions, distance orders, buyers) grouped by the dimensions. `kpis` computes
    all the asked metrics of one source in one query: the source (the sessionised
    events, say) is built and scanned once however many of its metrics are asked."""

    source: Source
    value: Value

    def __call__(self, facts: Facts, query: MetricQuery) -> ir.Table:
        table = self.source(facts, query)
        return _aggregate(table, query, value=self.value(table))


# ------------------------------------------------------------------ building blocks


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def scoped(table: ir.Table, query: MetricQuery, time_column: str) -> ir.Table:
    """Rows in the date range and matching the filters the table has columns for."""
    at = table[time_column]
    if query.start is not None:
        table = table.filter(at >= ibis.literal(_naive(query.start)))
    if query.end is not None:
        table = table.filter(at < ibis.literal(_naive(query.end)))
    for name, values in query.filters().items():
        if name in table.columns:
            table = table.filter(table[name].isin(list(values)))
    return table


def _with_dimensions(table: ir.Table, query: MetricQuery, time_column: str) -> ir.Table:
    if "period" in query.dimensions:
        table = table.mutate(period=table[time_column].truncate(GRAINS[query.grain]))
    return table


def _aggregate(table: ir.Table, query: MetricQuery, **values: Any) -> ir.Table:
    if query.dimensions:
        return table.group_by(list(query.dimensions)).aggregate(**values)
    return table.aggregate(**values)


def ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator as float64, NULL when the denominator is 0 (cast first:
    PostgreSQL would otherwise divide integers)."""
    return numerator.cast("float64") / denominator.cast("float64").nullif(0.0)


def _sum(column: Any) -> Any:
    return ibis.coalesce(column.sum(), 0)


def _flag(condition: Any) -> Any:
    """1 where the condition holds, else 0 (PostgreSQL casts no boolean to bigint)."""
    return ibis.ifelse(condition, 1, 0)


def _count_if(condition: Any) -> Any:
    return _sum(_flag(condition))


def _sum_if(condition: Any, column: Any) -> Any:
    """The sum of `column` where the condition holds, 0 when it never does."""
    return _sum(ibis.ifelse(condition, column, 0))


def _join_on_dimensions(left: ir.Table, right: ir.Table, query: MetricQuery) -> ir.Table:
    """Two aggregates side by side, matched on the dimension columns."""
    dims = list(query.dimensions)
    if not dims:
        return left.cross_join(right)
    renamed = right.rename({f"{d}_r": d for d in dims})
    joined = left.left_join(renamed, [left[d] == renamed[f"{d}_r"] for d in dims])
    return joined.drop(*(f"{d}_r" for d in dims))


# ------------------------------------------------------------------ sales


def _lines(facts: Facts, query: MetricQuery) -> ir.Table:
    lines = scoped(facts.sales_lines, query, "placed_at")
    lines = lines.filter(~lines.cancelled)
    return _with_dimensions(lines, query, "placed_at")


def _sales_metric(build: Value) -> Aggregate:
    return Aggregate(_lines, build)


# ------------------------------------------------------------------ sessions


def sessions_table(facts: Facts, query: MetricQuery) -> ir.Table:
    """One row per web or app session: visitor, channel, device, start, events (count),
    converted (an order in it), carted (a product added in it). A session is a visitor's
    run of events on one channel with no gap over 30 minutes (between the events' times
    in whole seconds)."""
    events = scoped(facts.events, query, "timestamp")
    events = events.filter(
        events.channel.isin(list(DIGITAL_CHANNELS)), events.type.isin(["page", "screen", "track"])
    )
    events = events.mutate(
        visitor=ibis.coalesce(events.profile, events.anonymous_id),
        # Whole seconds on every engine (Spark and SQLite drop the fraction anyway), so
        # that a gap of 1800.4 s is no session break on one engine and one on another.
        at_s=events.timestamp.epoch_seconds().floor(),
    )
    # Two window functions over the same partition and order, no self-join: the gap to
    # the visitor's previous event, then a running count of session starts. Ordered by
    # time alone (no tie-breaker to sort on): events at the same instant are 0 s apart,
    # so at most the first of them starts a session, and the running count takes every
    # event at that instant (RANGE frame), so they share one session whatever their
    # order.
    partition = ["visitor", "channel"]
    previous = ibis.window(group_by=partition, order_by="timestamp")
    events = events.mutate(previous_s=events.at_s.lag().over(previous))
    starts = events.previous_s.isnull() | (events.at_s - events.previous_s > SESSION_GAP_S)
    so_far = ibis.range_window(following=0, group_by=partition, order_by="timestamp")
    events = events.mutate(session_no=_flag(starts).sum().over(so_far))
    return events.group_by(["visitor", "channel", "session_no"]).aggregate(
        start=events.timestamp.min(),
        device=events.device.min(),
        events=events.count(),
        converted=_flag(events.event == ORDER_COMPLETED).max(),
        carted=_flag(events.event == PRODUCT_ADDED).max(),
    )


def _sessions(facts: Facts, query: MetricQuery) -> ir.Table:
    return _with_dimensions(sessions_table(facts, query), query, "start")


def _session_metric(build: Value) -> Aggregate:
    return Aggregate(_sessions, build)


# ------------------------------------------------------------------ stores


def _footfall(facts: Facts, query: MetricQuery) -> ir.Table:
    counts = _with_dimensions(scoped(facts.footfall, query, "hour"), query, "hour")
    return _aggregate(counts, query, visitors=_sum(counts.visitors))


def _store_conversion(facts: Facts, query: MetricQuery) -> ir.Table:
    orders = scoped(facts.orders, query, "placed_at")
    orders = orders.filter((orders.channel == "store") & ~orders.cancelled)
    orders = _with_dimensions(orders, query, "placed_at")
    sold = _aggregate(orders, query, store_orders=orders.count())
    joined = _join_on_dimensions(_footfall(facts, query), sold, query)
    value = ratio(ibis.coalesce(joined.store_orders, 0), joined.visitors)
    return joined.select(*query.dimensions, value=value)


# ------------------------------------------------------------------ fulfilment modes


def _distance_orders(facts: Facts, query: MetricQuery) -> ir.Table:
    orders = scoped(facts.orders, query, "placed_at")
    orders = orders.filter(~orders.cancelled & (orders.mode != "carry_out"))
    return _with_dimensions(orders, query, "placed_at")


def _mode_share(modes: Sequence[str]) -> Aggregate:
    return Aggregate(
        _distance_orders, lambda t: ratio(_count_if(t.mode.isin(list(modes))), t.count())
    )


# ------------------------------------------------------------------ impulse purchases


def _impulse_share(facts: Facts, query: MetricQuery) -> ir.Table:
    lines = _lines(facts, query).filter(lambda t: t.customer.notnull())
    interest = facts.events.filter(
        facts.events.event.isin(list(INTEREST_EVENTS))
        & facts.events.profile.notnull()
        & facts.events.sku.notnull()
    )
    # One text key (customer and SKU), materialised and indexed: SQLite joins it by index.
    interest = facts.materialize(
        interest.select(
            seen_key=interest.profile.concat("\x1f", interest.sku),
            seen_s=interest.timestamp.epoch_seconds(),
        ),
        "seen_key",
        "seen_s",
    )
    keyed = lines.mutate(
        bought_s=lines.placed_at.epoch_seconds(), key=lines.customer.concat("\x1f", lines.sku)
    )
    prior = keyed.join(
        interest,
        [
            keyed.key == interest.seen_key,
            interest.seen_s < keyed.bought_s,
            interest.seen_s >= keyed.bought_s - IMPULSE_WINDOW_S,
        ],
    )
    considered = prior.select(
        order_key=prior.order_id, line_key=prior.line_no, considered=ibis.literal(1)
    ).distinct()
    marked = keyed.left_join(
        considered,
        [keyed.order_id == considered.order_key, keyed.line_no == considered.line_key],
    )
    impulse = _sum(ibis.ifelse(marked.considered.isnull(), marked.quantity, 0))
    return _aggregate(marked, query, value=ratio(impulse, _sum(marked.quantity)))


# ------------------------------------------------------------------ omnichannel customers


def buyers_table(facts: Facts, query: MetricQuery) -> ir.Table:
    """One row per buying customer in the range: channels used, orders, revenue (order
    totals in cents, delivery included) and `omnichannel` (bought on 2+ channels)."""
    orders = scoped(facts.orders, query, "placed_at")
    orders = orders.filter(~orders.cancelled & orders.customer.notnull())
    buyers = orders.group_by("customer").aggregate(
        channels=orders.channel.nunique(), orders=orders.count(), revenue=_sum(orders.total)
    )
    return buyers.mutate(omnichannel=buyers.channels >= 2)


def _buyers_metric(build: Callable[[ir.Table, Any], Any], omnichannel: bool | None) -> Aggregate:
    """An aggregate over the buyers of one segment (`omnichannel` True or False) or all
    (None): `build(buyers, in_segment)` sums or counts where `in_segment` holds, so the
    segments' metrics share one pass over the buyers."""

    def value(buyers: ir.Table) -> Any:
        if omnichannel is None:
            return build(buyers, ibis.literal(True))
        return build(buyers, buyers.omnichannel if omnichannel else ~buyers.omnichannel)

    return Aggregate(buyers_table, value)


def _omnichannel_metrics() -> list[Metric]:
    out: list[Metric] = []
    none: frozenset[str] = frozenset()
    period_filters = frozenset({"store"})
    for segment, flag in (("omnichannel", True), ("single_channel", False)):
        who = "customers who bought on two channels or more" if flag else "one-channel buyers"
        out += [
            Metric(
                f"{segment}_customers",
                _buyers_metric(lambda _, chosen: _count_if(chosen), flag),
                none,
                "customers",
                f"Number of {who}.",
                period_filters,
            ),
            Metric(
                f"{segment}_revenue",
                _buyers_metric(lambda t, chosen: _sum_if(chosen, t.revenue), flag),
                none,
                "cents",
                f"Order totals of {who}.",
                period_filters,
            ),
            Metric(
                f"{segment}_orders_per_customer",
                _buyers_metric(
                    lambda t, chosen: ratio(_sum_if(chosen, t.orders), _count_if(chosen)), flag
                ),
                none,
                "orders",
                f"Orders per customer among {who}.",
                period_filters,
            ),
            Metric(
                f"{segment}_revenue_per_customer",
                _buyers_metric(
                    lambda t, chosen: ratio(_sum_if(chosen, t.revenue), _count_if(chosen)), flag
                ),
                none,
                "cents",
                f"Order totals per customer among {who}.",
                period_filters,
            ),
        ]
    out.append(
        Metric(
            "omnichannel_share",
            _buyers_metric(lambda t, _: ratio(_count_if(t.omnichannel), t.count()), None),
            none,
            "fraction",
            "Share of buying customers who bought on two channels or more.",
            period_filters,
        )
    )
    return out


# ------------------------------------------------------------------ the catalogue

_ALL = frozenset(DIMENSIONS)
_CHANNEL_PERIOD = frozenset({"channel", "period"})
_STORE_PERIOD = frozenset({"store", "period"})
_ORDERS_DIMS = frozenset({"channel", "store", "period"})

METRIC_LIST: list[Metric] = [
    Metric(
        "sales",
        _sales_metric(lambda t: _sum(t.total)),
        _ALL,
        "cents",
        "Merchandise sales: line totals after discounts, VAT included, of orders not "
        "cancelled (delivery fees excluded).",
    ),
    Metric(
        "orders",
        _sales_metric(lambda t: t.order_id.nunique()),
        _ALL,
        "orders",
        "Orders not cancelled.",
    ),
    Metric("units", _sales_metric(lambda t: _sum(t.quantity)), _ALL, "units", "Units sold."),
    Metric(
        "average_basket",
        _sales_metric(lambda t: ratio(_sum(t.total), t.order_id.nunique())),
        _ALL,
        "cents",
        "Sales per order.",
    ),
    Metric(
        "items_per_basket",
        _sales_metric(lambda t: ratio(_sum(t.quantity), t.order_id.nunique())),
        _ALL,
        "units",
        "Units per order.",
    ),
    Metric(
        "returns_rate",
        _sales_metric(lambda t: ratio(_sum(t.returned_quantity), _sum(t.quantity))),
        _ALL,
        "fraction",
        "Units returned per unit sold.",
    ),
    Metric(
        "sessions",
        _session_metric(lambda t: t.count()),
        _CHANNEL_PERIOD,
        "sessions",
        "Web and app sessions (30 minutes of inactivity end one).",
    ),
    Metric(
        "bounce_rate",
        _session_metric(lambda t: ratio(_count_if(t.events == 1), t.count())),
        _CHANNEL_PERIOD,
        "fraction",
        "Sessions of a single event.",
    ),
    Metric(
        "conversion_rate",
        _session_metric(lambda t: ratio(_sum(t.converted), t.count())),
        _CHANNEL_PERIOD,
        "fraction",
        "Sessions with an Order Completed.",
    ),
    Metric(
        "cart_abandonment_rate",
        _session_metric(
            lambda t: ratio(_count_if((t.carted == 1) & (t.converted == 0)), _sum(t.carted))
        ),
        _CHANNEL_PERIOD,
        "fraction",
        "Sessions with a Product Added and no Order Completed, per session with a Product Added.",
    ),
    Metric(
        "footfall",
        lambda f, q: _footfall(f, q).rename(value="visitors"),
        _STORE_PERIOD,
        "visitors",
        "Visitors counted entering the stores.",
    ),
    Metric(
        "store_conversion",
        _store_conversion,
        _STORE_PERIOD,
        "fraction",
        "Store orders (till receipts) per visitor counted.",
    ),
    Metric(
        "click_collect_share",
        _mode_share(("click_and_collect",)),
        _ORDERS_DIMS,
        "fraction",
        "Share of distance orders (all but till sales) collected in store.",
    ),
    Metric(
        "drive_share",
        _mode_share(("drive",)),
        _ORDERS_DIMS,
        "fraction",
        "Share of distance orders collected at a drive.",
    ),
    Metric(
        "delivery_share",
        _mode_share(DELIVERY_MODES),
        _ORDERS_DIMS,
        "fraction",
        "Share of distance orders delivered to an address.",
    ),
    Metric(
        "impulse_share",
        _impulse_share,
        _ALL,
        "fraction",
        "Share of units bought by known customers with no view, search or cart of that "
        "SKU by them in the 7 days before.",
    ),
    *_omnichannel_metrics(),
]
METRICS: dict[str, Metric] = {m.name: m for m in METRIC_LIST}


# ------------------------------------------------------------------ running


def check_query(names: Sequence[str], query: MetricQuery) -> list[Metric]:
    """The metrics named, or InvalidInput naming what is unknown or not supported."""
    errors: list[FieldError] = []
    unknown = [n for n in names if n not in METRICS]
    if not names:
        errors.append(FieldError("name at least one metric", parameter="metric"))
    if unknown:
        errors.append(FieldError(f"unknown metric(s) {', '.join(unknown)}", parameter="metric"))
    bad_dims = [d for d in query.dimensions if d not in DIMENSIONS]
    if bad_dims:
        errors.append(
            FieldError(
                f"unknown dimension(s) {', '.join(bad_dims)}; use {', '.join(DIMENSIONS)}",
                parameter="dimension",
            )
        )
    if query.grain not in GRAINS:
        errors.append(
            FieldError(
                f"unknown period {query.grain!r}; use {', '.join(GRAINS)}", parameter="period"
            )
        )
    if query.start and query.end and query.start >= query.end:
        errors.append(FieldError("must be before the end", parameter="start"))
    if errors:
        raise InvalidInput(f"Invalid KPI query: {errors[0].detail}.", errors)
    metrics = [METRICS[n] for n in names]
    for metric in metrics:
        refused = [d for d in query.dimensions if d not in metric.dimensions]
        refused += [f for f in query.filters() if f not in metric.accepts()]
        if refused:
            raise InvalidInput(
                f"The metric {metric.name} cannot be split or filtered by "
                f"{', '.join(refused)} (it takes {', '.join(sorted(metric.accepts())) or 'none'}).",
                [FieldError(f"not available for {metric.name}", parameter="dimension")],
            )
    return metrics


def metric_table(facts: Facts, name: str, query: MetricQuery) -> ir.Table:
    """One metric as an Ibis table (dimension columns, then `value`)."""
    [metric] = check_query([name], query)
    return metric.compute(facts, query)


def queries(facts: Facts, metrics: Sequence[Metric], query: MetricQuery) -> list[ir.Table]:
    """The metrics as few Ibis tables: one per source shared by aggregate metrics, one
    per other metric; the dimension columns, then `m<i>` for `metrics[i]`."""
    by_source: dict[Source, list[tuple[int, Value]]] = {}
    tables: list[ir.Table] = []
    for i, metric in enumerate(metrics):
        if isinstance(metric.compute, Aggregate):
            by_source.setdefault(metric.compute.source, []).append((i, metric.compute.value))
        else:
            tables.append(metric.compute(facts, query).rename({f"m{i}": "value"}))
    for source, values in by_source.items():
        table = source(facts, query)
        tables.append(_aggregate(table, query, **{f"m{i}": value(table) for i, value in values}))
    return tables


def kpis(engine: Engine, names: Sequence[str], query: MetricQuery) -> list[dict[str, Any]]:
    """Run metrics on an engine: one row per combination of the dimensions, with the
    dimension values then one column per metric (None where a metric has no value).
    The metrics of one source run as one query (see `Aggregate`)."""
    metrics = check_query(names, query)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for table in queries(engine.facts, metrics, query):
        for row in engine.rows(table):
            key = tuple(row[d] for d in query.dimensions)
            values = merged.setdefault(key, {d: row[d] for d in query.dimensions})
            for i, metric in enumerate(metrics):
                if f"m{i}" in row:
                    values[metric.name] = row[f"m{i}"]
    rows = [{**dims, **{m.name: dims.get(m.name) for m in metrics}} for dims in merged.values()]
    for row, dims in zip(rows, merged.values(), strict=True):
        row.update(dims)
    return sorted(rows, key=lambda r: tuple(str(r[d]) for d in query.dimensions))
