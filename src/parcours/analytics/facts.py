"""The facts every metric reads: their names, columns and types, and the holder of one
Ibis table per fact that the engines fill.

The owning contexts publish each fact as a SQLAlchemy select in their facade (orders,
sales lines, events, customers); footfall is this context's own table. Every engine
gives the metrics tables with exactly these columns and types, so a metric written once
runs on each. Times are UTC without a zone; money is integer cents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
from sqlalchemy import BigInteger, Select, cast, select

from parcours import customers, orders, stores
from parcours.analytics.models import Footfall
from parcours.core.facts import utc_timestamp

FACT_COLUMNS: dict[str, dict[str, str]] = {
    "orders": {
        "order_id": "string",
        "number": "string",
        "channel": "string",
        "store": "string",
        "mode": "string",
        "customer": "string",
        "placed_at": "timestamp",
        "currency": "string",
        "total": "int64",
        "discount_total": "int64",
        "units": "int64",
        "status": "string",
        "cancelled": "boolean",
        "refunded": "int64",
        "updated_at": "timestamp",
    },
    "sales_lines": {
        "order_id": "string",
        "line_no": "int64",
        "channel": "string",
        "store": "string",
        "mode": "string",
        "customer": "string",
        "placed_at": "timestamp",
        "sku": "string",
        "category": "string",
        "quantity": "int64",
        "returned_quantity": "int64",
        "total": "int64",
        "cancelled": "boolean",
        "updated_at": "timestamp",
    },
    "events": {
        "seq": "int64",
        "type": "string",
        "event": "string",
        "channel": "string",
        "store": "string",
        "profile": "string",
        "anonymous_id": "string",
        "timestamp": "timestamp",
        "sku": "string",
        "category": "string",
        "order_id": "string",
        "revenue": "int64",
        "device": "string",
    },
    "customers": {
        "customer": "string",
        "created_at": "timestamp",
        "birth_year": "int64",
        "postcode": "string",
        "city": "string",
        "gender": "string",
    },
    "footfall": {
        "store": "string",
        "hour": "timestamp",
        "visitors": "int64",
    },
}
FACT_NAMES = tuple(FACT_COLUMNS)


@dataclass(frozen=True)
class Facts:
    """One Ibis table per fact, all on one backend."""

    orders: ir.Table
    sales_lines: ir.Table
    events: ir.Table
    customers: ir.Table
    footfall: ir.Table

    materialized: list[ir.Table] = field(default_factory=list, compare=False)

    def table(self, name: str) -> ir.Table:
        table: ir.Table = getattr(self, name)
        return table

    def materialize(self, expr: ir.Table, *index: str) -> ir.Table:
        """`expr` computed once into a temporary table (dropped with the connection),
        indexed on `index` where the database has indexes. Multi-step queries (funnel
        steps) join such tables: SQLite has no hash join and, on a subquery, builds its
        temporary index on the wrong column, making each step quadratic."""
        cached = expr.cache()  # the same expression gives the same table
        backend = ibis.get_backend(cached)
        table = cached.get_name().rsplit(".", 1)[-1]
        if any(t.get_name().rsplit(".", 1)[-1] == table for t in self.materialized):
            return cached
        self.materialized.append(cached)
        columns = ", ".join(f'"{column}"' for column in index)
        if index and backend.name == "sqlite":
            backend.raw_sql(f'CREATE INDEX temp."{table}_ix" ON "{table}" ({columns})')
        elif index and backend.name == "postgres":
            backend.raw_sql(f'CREATE INDEX "{table}_ix" ON "{table}" ({columns})')
        return cached

    def release(self) -> None:
        """Drop the temporary tables `materialize` made."""
        while self.materialized:
            self.materialized.pop().release()


def footfall_facts(dialect: str) -> Select[Any]:
    """The `footfall` fact: visitors per store code and hour (UTC)."""
    codes = stores.store_codes().subquery("footfall_stores")
    return select(
        codes.c.code.label("store"),
        utc_timestamp(Footfall.hour_start, dialect).label("hour"),
        cast(Footfall.visitors, BigInteger).label("visitors"),
    ).join(codes, codes.c.store_id == Footfall.store_id)


def fact_selects(dialect: str) -> dict[str, Select[Any]]:
    """Each fact's select for a database dialect (`sqlite` or `postgresql`)."""
    return {
        "orders": orders.order_facts(dialect),
        "sales_lines": orders.sales_line_facts(dialect),
        "events": customers.event_facts(dialect),
        "customers": customers.customer_facts(dialect),
        "footfall": footfall_facts(dialect),
    }


def conform(name: str, table: ir.Table) -> ir.Table:
    """`table` with exactly the fact's columns, in order, cast to the fact's types."""
    columns = FACT_COLUMNS[name]
    return table.select(*(table[c].cast(t).name(c) for c, t in columns.items()))


def facts_of(tables: dict[str, ir.Table]) -> Facts:
    """A Facts holder from raw tables named by fact, each conformed."""
    return Facts(**{name: conform(name, tables[name]) for name in FACT_NAMES})


def empty_schema(name: str) -> ibis.Schema:
    """The Ibis schema of a fact (for empty exports)."""
    return ibis.schema(FACT_COLUMNS[name])
