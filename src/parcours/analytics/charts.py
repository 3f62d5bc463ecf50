"""ECharts options for the insight dashboards, built from plain rows.

The console draws any element carrying `data-chart` (see web/static/parcours.js), so a
chart is a JSON-serialisable dict. Values that are missing or not finite become ECharts'
`"-"` (a gap), never NaN: a chart over an empty period shows nothing rather than lying.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

PALETTE = ("#2b5f8a", "#c8553d", "#588b8b", "#f2a541", "#7d5ba6", "#4f9d69", "#a23b72", "#6c757d")
GRID = {"containLabel": True, "left": 10, "right": 20, "top": 36, "bottom": 10}


def chart_value(value: float | int | None) -> float | int | str:
    """A number ECharts can draw; `"-"` for a missing or non-finite value."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return value


def _series_chart(
    kind: str, categories: Sequence[str], series: Mapping[str, Sequence[float | int | None]]
) -> dict[str, Any]:
    """One `kind` series ("line" or "bar") per entry over the categories on the x axis."""
    return {
        "color": list(PALETTE),
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": GRID,
        "xAxis": {"type": "category", "data": list(categories)},
        "yAxis": {"type": "value"},
        "series": [
            {"name": name, "type": kind, "data": [chart_value(v) for v in values]}
            for name, values in series.items()
        ],
    }


def line_chart(
    periods: Sequence[str], series: Mapping[str, Sequence[float | int | None]]
) -> dict[str, Any]:
    """One line per series over the periods (e.g. sales per channel per month)."""
    return _series_chart("line", periods, series)


def bar_chart(
    labels: Sequence[str], values: Sequence[float | int | None], name: str = ""
) -> dict[str, Any]:
    """Horizontal bars, largest first as given (e.g. sales per store)."""
    return {
        "color": list(PALETTE),
        "tooltip": {},
        "grid": {**GRID, "top": 10},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": list(reversed(labels))},
        "series": [
            {"name": name, "type": "bar", "data": [chart_value(v) for v in reversed(values)]}
        ],
    }


def grouped_bar_chart(
    labels: Sequence[str], series: Mapping[str, Sequence[float | int | None]]
) -> dict[str, Any]:
    """Vertical bars, one group per label and one bar per series (e.g. credit per channel
    under each attribution model)."""
    return _series_chart("bar", labels, series)


def pie_chart(items: Sequence[tuple[str, float | int]]) -> dict[str, Any]:
    """Shares of a whole (e.g. orders per fulfilment mode); empty slices are left out."""
    return {
        "color": list(PALETTE),
        "tooltip": {"trigger": "item"},
        "legend": {"top": 0},
        "series": [
            {
                "type": "pie",
                "radius": ["35%", "65%"],
                "top": 30,
                "data": [{"name": name, "value": value} for name, value in items if value],
            }
        ],
    }


def funnel_chart(stages: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """A funnel of people reaching each stage, in stage order (not re-sorted)."""
    top = max((count for _, count in stages), default=0)
    return {
        "color": list(PALETTE),
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "funnel",
                "sort": "none",
                "min": 0,
                "max": max(top, 1),
                "left": "10%",
                "width": "80%",
                "label": {"show": True, "position": "inside"},
                "data": [{"name": name, "value": count} for name, count in stages],
            }
        ],
    }


def sankey_chart(nodes: Sequence[str], links: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """Flows between steps (paths to conversion); nodes must be unique names."""
    return {
        "color": list(PALETTE),
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "sankey",
                "emphasis": {"focus": "adjacency"},
                "nodeAlign": "left",
                "data": [{"name": name} for name in nodes],
                "links": [
                    {"source": source, "target": target, "value": value}
                    for source, target, value in links
                    if value > 0
                ],
            }
        ],
    }


def heatmap_chart(
    columns: Sequence[str], rows: Sequence[str], cells: Sequence[Sequence[float | None]]
) -> dict[str, Any]:
    """A table of shares coloured by value (e.g. retention: one row per cohort, one column
    per month since the first purchase). Cells hold fractions 0..1 or None."""
    data = [
        [x, y, round(value * 100, 1)]
        for y, row in enumerate(cells)
        for x, value in enumerate(row)
        if value is not None and math.isfinite(value)
    ]
    return {
        "tooltip": {"position": "top"},
        "grid": {**GRID, "top": 10, "bottom": 60},
        "xAxis": {"type": "category", "data": list(columns), "splitArea": {"show": True}},
        "yAxis": {"type": "category", "data": list(rows), "splitArea": {"show": True}},
        "visualMap": {
            "min": 0,
            "max": 100,
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#f4f1ea", "#2b5f8a"]},
        },
        "series": [{"type": "heatmap", "data": data, "label": {"show": True}}],
    }
