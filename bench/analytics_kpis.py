"""KPIs by channel over generated facts: DuckDB (the Ibis metrics on a Parquet export)
against a pandas baseline computing the same figures in the same run.

Facts are generated with numpy (a fixed seed) straight into the export layout, so the
benchmark measures the metrics, not the export. Figures: sales, orders, units, average
basket, returns rate (sales lines) and sessions, bounce and conversion rates (events,
30-minute sessions) per channel. Both sides start from the same Parquet files: DuckDB's
time includes opening the engine (loading the files into its tables), pandas' reading
the columns it needs. Default 1M events / 100k orders; `--events 10000000 --orders
1000000` for the issue's size; `--spark` also runs the metrics on Spark (local[2]).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import ibis
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq

from bench.report import Report, Table, note, seconds
from parcours.analytics import engines, metrics
from parcours.analytics.export import arrow_schema
from parcours.analytics.facts import FACT_COLUMNS
from parcours.core.spark import spark_session

DESCRIPTION = "KPIs per channel on DuckDB over Parquet vs pandas, same figures"
CHANNELS = np.array(["web", "app", "store", "call_centre"])
EVENTS = np.array(["Product Viewed", "Product Added", "Order Completed", "Home"])
NAMES = [
    "sales",
    "orders",
    "units",
    "average_basket",
    "returns_rate",
    "sessions",
    "bounce_rate",
    "conversion_rate",
]
START = np.datetime64("2024-01-01T00:00:00", "us")
LINE_COLUMNS = ["order_id", "channel", "quantity", "returned_quantity", "total", "cancelled"]
EVENT_COLUMNS = ["seq", "event", "channel", "profile", "timestamp"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench analytics_kpis", description=DESCRIPTION)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--spark", action="store_true", help="also run the KPIs on Spark (local[2]), same files"
    )
    return parser.parse_args(argv)


def _write(folder: Path, name: str, data: dict[str, Any]) -> None:
    (folder / name).mkdir(parents=True)
    pq.write_table(pa.table(data, schema=arrow_schema(name)), folder / name / "part.parquet")


def generate(folder: Path, n_events: int, n_orders: int, seed: int) -> None:
    """Write the facts of `n_events` events and `n_orders` orders under `folder`."""
    rng = np.random.default_rng(seed)
    year_us = 365 * 24 * 3600 * 10**6
    lines_per = rng.integers(1, 4, n_orders)
    n_lines = int(lines_per.sum())
    order_ids = np.array([f"o{i}" for i in range(n_orders)], dtype=object)
    channel = CHANNELS[rng.integers(0, 4, n_orders)]
    placed = START + rng.integers(0, year_us, n_orders).astype("timedelta64[us]")
    cancelled = rng.random(n_orders) < 0.03
    idx = np.repeat(np.arange(n_orders), lines_per)
    qty = rng.integers(1, 4, n_lines)
    lines = {
        "order_id": order_ids[idx],
        "line_no": np.ones(n_lines, dtype=np.int64),
        "channel": channel[idx],
        "store": np.full(n_lines, None),
        "mode": np.full(n_lines, None),
        "customer": np.full(n_lines, None),
        "placed_at": placed[idx],
        "sku": np.full(n_lines, "SKU"),
        "category": np.full(n_lines, "Robes"),
        "quantity": qty,
        "returned_quantity": (rng.random(n_lines) < 0.08) * 1,
        "total": qty * rng.integers(500, 9000, n_lines),
        "cancelled": cancelled[idx],
        "updated_at": placed[idx],
    }
    visitors = max(n_events // 12, 1)
    at = START + np.sort(rng.integers(0, year_us, n_events)).astype("timedelta64[us]")
    events = {
        "seq": np.arange(1, n_events + 1, dtype=np.int64),
        "type": np.where(rng.random(n_events) < 0.3, "page", "track"),
        "event": EVENTS[rng.choice(4, n_events, p=[0.6, 0.2, 0.05, 0.15])],
        "channel": CHANNELS[rng.integers(0, 2, n_events)],
        "store": np.full(n_events, None),
        "profile": np.array([f"p{v}" for v in rng.integers(0, visitors, n_events)], dtype=object),
        "anonymous_id": np.full(n_events, None),
        "timestamp": at,
        "sku": np.full(n_events, None),
        "category": np.full(n_events, None),
        "order_id": np.full(n_events, None),
        "revenue": np.full(n_events, None),
        "device": np.full(n_events, "web"),
    }
    empty: dict[str, list[Any]] = {c: [] for c in FACT_COLUMNS["orders"]}
    _write(folder, "sales_lines", lines)
    _write(folder, "events", events)
    _write(folder, "orders", empty)
    _write(folder, "customers", {c: [] for c in FACT_COLUMNS["customers"]})
    _write(folder, "footfall", {c: [] for c in FACT_COLUMNS["footfall"]})


def pandas_kpis(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    lines = frames["lines"]
    lines = lines[~lines["cancelled"]]
    g = lines.groupby("channel")
    sold = pd.DataFrame(
        {
            "sales": g["total"].sum(),
            "orders": g["order_id"].nunique(),
            "units": g["quantity"].sum(),
            "returned": g["returned_quantity"].sum(),
        }
    )
    sold["average_basket"] = sold["sales"] / sold["orders"]
    sold["returns_rate"] = sold["returned"] / sold["units"]
    ev = frames["events"]
    ev = ev[ev["channel"].isin(["web", "app"])].sort_values(
        ["profile", "channel", "timestamp", "seq"]
    )
    # Gaps between times in whole seconds, as the metrics measure them.
    second = ev["timestamp"].dt.floor("s")
    gap = second.groupby([ev["profile"], ev["channel"]]).diff()
    starts = gap.isna() | (gap > pd.Timedelta(minutes=30))
    ev = ev.assign(
        session=starts.astype("int64").groupby([ev["profile"], ev["channel"]]).cumsum(),
        converted=(ev["event"] == "Order Completed").astype("int64"),
    )
    s = ev.groupby(["profile", "channel", "session"]).agg(
        n=("seq", "size"), converted=("converted", "max")
    )
    per = s.groupby("channel").agg(
        sessions=("n", "size"),
        bounces=("n", lambda x: int((x == 1).sum())),
        converted=("converted", "sum"),
    )
    out: dict[str, dict[str, Any]] = {}
    for channel, row in sold.iterrows():
        out[str(channel)] = {
            k: row[k] for k in ("sales", "orders", "units", "average_basket", "returns_rate")
        }
    for channel, row in per.iterrows():
        entry = out.setdefault(str(channel), {})
        entry["sessions"] = int(row["sessions"])
        entry["bounce_rate"] = row["bounces"] / row["sessions"]
        entry["conversion_rate"] = row["converted"] / row["sessions"]
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(
        b.get(k) is not None
        and abs(float(a[k] or 0) - float(b[k])) <= 1e-9 * max(1.0, abs(float(b[k])))
        for k in NAMES
        if a.get(k) is not None or k in b
    )


def _timed_engine(name: str, folder: Path) -> tuple[list[dict[str, Any]], float, float, int]:
    """KPIs on an engine: the rows, seconds to open it (DuckDB: load the Parquet files
    into its tables), seconds for `kpis` and DuckDB's memory in bytes (0 on Spark)."""
    query = metrics.MetricQuery(dimensions=("channel",))
    started = time.perf_counter()
    with engines.open_engine(name, parquet=folder) as engine:
        opened = time.perf_counter()
        rows = metrics.kpis(engine, NAMES, query)
        done = time.perf_counter()
        memory = 0
        if name == "duckdb":
            backend: Any = engine.backend
            used = backend.con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()")
            memory = int(used.fetchone()[0] or 0)
    return rows, opened - started, done - opened, memory


def _timed_pandas(folder: Path) -> tuple[dict[str, dict[str, Any]], float, float]:
    """The pandas baseline from the same Parquet files (only the columns it needs): the
    figures, seconds to read, seconds to compute."""
    started = time.perf_counter()
    frames = {
        "lines": pd.read_parquet(folder / "sales_lines", columns=LINE_COLUMNS),
        "events": pd.read_parquet(folder / "events", columns=EVENT_COLUMNS),
    }
    read = time.perf_counter()
    figures = pandas_kpis(frames)
    return figures, read - started, time.perf_counter() - read


def run(argv: list[str]) -> Report:
    options = parse(argv)
    with TemporaryDirectory(prefix="parcours-bench-kpis-") as name:
        folder = Path(name)
        note(f"generating {options.events:,} events and {options.orders:,} orders")
        generate(folder, options.events, options.orders, options.seed)
        note("KPIs on DuckDB")
        ibis.duckdb.connect().disconnect()  # imports done before timing, as pandas' are
        rows, duck_load, duck_query, duck_memory = _timed_engine("duckdb", folder)
        note("KPIs with pandas")
        baseline, pandas_read, pandas_compute = _timed_pandas(folder)
        spark: tuple[list[dict[str, Any]], float, float, int] | None = None
        spark_start = 0.0
        if options.spark:
            note("starting Spark (local mode)")
            started = time.perf_counter()
            spark_session()
            spark_start = time.perf_counter() - started
            note("KPIs on Spark")
            spark = _timed_engine("spark", folder)
    duck = duck_load + duck_query
    panda = pandas_read + pandas_compute
    same = all(_same(row, baseline.get(row["channel"], {})) for row in rows)
    figures: dict[str, float | int | str | bool] = {
        "events": options.events,
        "orders": options.orders,
        "duckdb_load_seconds": round(duck_load, 3),
        "duckdb_query_seconds": round(duck_query, 3),
        "duckdb_seconds": round(duck, 3),
        "duckdb_memory_mb": round(duck_memory / 1e6),
        "pandas_read_seconds": round(pandas_read, 3),
        "pandas_compute_seconds": round(pandas_compute, 3),
        "pandas_seconds": round(panda, 3),
        "pandas_over_duckdb": round(panda / duck, 2),
        "pandas_compute_over_duckdb_query": round(pandas_compute / duck_query, 2),
        "same_figures": same,
    }
    lines = [
        ["duckdb (Ibis metrics)", seconds(duck_load), seconds(duck_query), seconds(duck)],
        ["pandas baseline", seconds(pandas_read), seconds(pandas_compute), seconds(panda)],
    ]
    if spark is not None:
        spark_rows, spark_load, spark_query, _ = spark
        spark_total = spark_load + spark_query
        figures.update(
            spark_start_seconds=round(spark_start, 3),
            spark_seconds=round(spark_total, 3),
            spark_over_duckdb=round(spark_total / duck, 2),
            spark_same_figures=all(
                _same(row, baseline.get(row["channel"], {})) for row in spark_rows
            ),
        )
        lines.append(
            [
                "spark local[2] (Ibis metrics)",
                seconds(spark_load),
                seconds(spark_query),
                seconds(spark_total),
            ]
        )
    table = Table("KPIs per channel (seconds)", ["engine", "read/load", "KPIs", "total"], lines)
    summary = Table(
        "Ratios",
        ["", "value"],
        [
            ["pandas / duckdb, total", f"{panda / duck:.2f}"],
            ["pandas / duckdb, KPIs only", f"{pandas_compute / duck_query:.2f}"],
            ["same figures", str(same)],
            ["DuckDB memory after the KPIs (MB)", f"{duck_memory / 1e6:,.0f}"],
        ],
    )
    return Report("Analytics KPIs: DuckDB vs pandas", figures, [table, summary])
