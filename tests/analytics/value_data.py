"""Small fact tables for cohort, RFM and CLV tests, on an in-memory DuckDB."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import pandas as pd

from parcours.analytics.engines import Engine
from parcours.analytics.facts import FACT_COLUMNS, FACT_NAMES, facts_of


def order(
    customer: str | None, at: str, channel: str = "web", total: int = 1000, **extra: Any
) -> dict[str, Any]:
    placed = datetime.fromisoformat(at)
    return {
        "order_id": f"o-{customer}-{at}-{channel}", "number": "N", "channel": channel,
        "store": None, "mode": "home_delivery", "customer": customer, "placed_at": placed,
        "currency": "EUR", "total": total, "discount_total": 0, "units": 1,
        "status": "completed", "cancelled": False, "refunded": 0, "updated_at": placed,
        **extra,
    }  # fmt: skip


def duckdb_engine_of(orders: list[dict[str, Any]]) -> Engine:
    """A DuckDB engine whose `orders` fact holds these rows (other facts empty)."""
    con = ibis.duckdb.connect()
    tables = {}
    for name in FACT_NAMES:
        schema = ibis.schema(FACT_COLUMNS[name])
        if name == "orders" and orders:
            frame = pd.DataFrame(orders, columns=list(FACT_COLUMNS[name]))
            tables[name] = con.create_table(name, ibis.memtable(frame).cast(schema))
        else:
            tables[name] = con.create_table(name, schema=schema)
    return Engine("duckdb", con, facts_of(tables))
