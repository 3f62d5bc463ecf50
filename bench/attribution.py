"""Attribution against ChannelAttribution 2.2.5: agreement and speed on the same paths.

Journeys are generated from a seed (a hidden channel-to-channel process with a
conversion chance that grows with each touch, aggregated into distinct paths in the
common path format) or read from a path file (`--paths`, e.g. the `Data.csv` inside
ChannelAttribution's source distribution). Both libraries run in this process on the
same strings: first, last and linear touch must agree exactly; Markov orders 1 to 4
must agree within ChannelAttribution's simulation error (it estimates removal effects
by simulating walks; Parcours solves the absorbing chain exactly) on the channels that
carry at least 5% of conversions. The yardstick is ChannelAttribution against itself
with another seed. Parcours times include parsing the path file's bytes; ChannelAttribution
runs on a DataFrame read beforehand (its `pandas.read_csv` time is reported apart, and
a second speed-up counts it). Every time is the best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import BenchmarkError
from bench.report import Report, Table, note, seconds, verdict

DESCRIPTION = "attribution heuristics and Markov (orders 1-4) vs ChannelAttribution"
CHANNELS = (
    "web",
    "app",
    "email",
    "social",
    "search",
    "display",
    "marketplace",
    "store visit",
    "call centre",
    "affiliate",
    "sms",
    "print",
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench attribution", description=DESCRIPTION)
    parser.add_argument("--journeys", type=int, default=200_000, help="generated journeys")
    parser.add_argument("--paths", type=Path, help="a path file to use instead (';', '>')")
    parser.add_argument("--orders", default="1,2,3,4", help="Markov orders to compare")
    parser.add_argument("--repeat", type=int, default=3, help="Parcours runs (best kept)")
    parser.add_argument(
        "--tolerance", type=float, default=0.05, help="relative Markov gap always accepted"
    )
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def generate(journeys: int, seed: int) -> str:
    """A path file of `journeys` generated journeys, aggregated by distinct path."""
    rng = np.random.default_rng(seed)
    k = len(CHANNELS)
    popularity = rng.dirichlet(np.full(k, 0.8))
    transitions = rng.dirichlet(np.full(k, 0.5), size=k) * 0.6 + 0.4 * popularity
    lift = rng.uniform(0.02, 0.25, size=k)
    lengths = np.minimum(rng.geometric(0.35, size=journeys), 20)
    totals: dict[str, list[float]] = {}
    first = rng.choice(k, size=journeys, p=popularity)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        state = first[rows]
        steps = [state]
        for _ in range(int(length) - 1):
            cumulative = transitions[state].cumsum(axis=1)
            state = (rng.random(len(rows))[:, None] > cumulative).sum(axis=1)
            state = np.minimum(state, k - 1)
            steps.append(state)
        touched = np.stack(steps, axis=1)
        chance = 1 - np.prod(1 - lift[touched], axis=1)
        converted = rng.random(len(rows)) < chance
        basket = np.round(rng.gamma(2.0, 40.0, size=len(rows)), 2)
        for path, conv, value in zip(touched, converted, basket, strict=True):
            key = " > ".join(CHANNELS[i] for i in path)
            row = totals.setdefault(key, [0, 0.0, 0])
            row[0 if conv else 2] += 1
            row[1] += float(value) if conv else 0.0
    lines = ["path;total_conversions;total_conversion_value;total_null"]
    lines += [f"{p};{c};{v:.2f};{n}" for p, (c, v, n) in totals.items()]
    return "\n".join(lines) + "\n"


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


def run(argv: list[str]) -> Report:
    options = parse(argv)
    try:
        import pandas as pd  # type: ignore[import-untyped]
        from ChannelAttribution import (
            heuristic_models,
            markov_model,
        )
    except ImportError as exc:
        raise BenchmarkError(
            f"ChannelAttribution is not installed ({exc}): run `./dev bench attribution`, "
            "which installs the bench extra."
        ) from None
    from parcours.analytics.attribution import attribute
    from parcours.analytics.pathfile import read_paths

    if options.paths:
        text = options.paths.read_text(encoding="utf-8-sig")
        source = options.paths.name
    else:
        note(f"generating {options.journeys:,} journeys")
        text = generate(options.journeys, options.seed)
        source = f"{options.journeys:,} generated journeys"
    frame, their_read_s = timed(lambda: pd.read_csv(io.StringIO(text), sep=";"), options.repeat)
    orders = [int(x) for x in options.orders.split(",") if x]
    if any(not 1 <= o <= 4 for o in orders):
        raise BenchmarkError("--orders takes numbers between 1 and 4, e.g. 1,2,3,4")

    raw = text.encode()

    def ours(model: str, order: int = 1) -> Any:
        # The file's bytes, as `parcours analytics attribution` reads them.
        return attribute(read_paths(io.BytesIO(raw)), model, order=order)

    rows: list[tuple[str, ...]] = []
    figures: dict[str, float | int | str | bool] = {
        "paths": len(frame),
        "source": source,
        "ca_pandas_read_seconds": round(their_read_s, 4),
    }
    total = float(frame["total_conversions"].sum())
    note("heuristics")
    theirs_h, their_h_s = timed(
        lambda: heuristic_models(
            frame, "path", "total_conversions", var_value="total_conversion_value", flg_pro=False
        ),
        options.repeat,
    )
    theirs_h = theirs_h.set_index("channel_name")
    heuristic_ok = True
    for model, column in (
        ("first", "first_touch"),
        ("last", "last_touch"),
        ("linear", "linear_touch"),
    ):
        result, our_s = timed(partial(ours, model), options.repeat)
        mine = {c: (n, v) for c, n, v in result.rows()}
        diff = max(
            max(
                abs(mine[c][0] - theirs_h.at[c, f"{column}_conversions"]),
                abs(mine[c][1] - theirs_h.at[c, f"{column}_value"]),
            )
            for c in theirs_h.index
        )
        ok = bool(diff <= 1e-6 * max(total, 1))
        heuristic_ok &= ok
        rows.append(
            (model, f"{diff:.2e}", "exact", seconds(our_s), seconds(their_h_s / 3), "", verdict(ok))
        )
        figures[f"{model}_max_abs_diff"] = float(diff)
    markov_ok = True
    parsed = read_paths(io.BytesIO(raw))
    for order in orders:
        note(f"markov order {order}")
        result, our_s = timed(partial(ours, "markov", order), options.repeat)
        theirs, their_s = timed(partial(_markov, markov_model, frame, order, 0), options.repeat)
        again, _ = timed(partial(_markov, markov_model, frame, order, 1000))
        mine = {c: n for c, n, _ in result.rows()}
        big = [c for c in theirs if theirs[c] >= 0.05 * total]
        gap = max(abs(mine[c] - theirs[c]) / theirs[c] for c in big)
        noise = max(abs(again[c] - theirs[c]) / theirs[c] for c in big)
        # Within the tolerance, or within ChannelAttribution's own seed-to-seed spread.
        ok = bool(gap <= max(options.tolerance, noise))
        _, model_s = timed(partial(attribute, parsed, "markov", order), options.repeat)
        markov_ok &= ok
        ratio = their_s / our_s
        rows.append(
            (
                f"markov order {order}",
                f"{gap:.2%}",
                f"{noise:.2%}",
                f"{seconds(our_s)} ({seconds(model_s)})",
                seconds(their_s),
                f"x{ratio:.1f} (x{their_s / model_s:.0f})",
                verdict(ok),
            )
        )
        figures.update(
            {
                f"markov{order}_max_rel_gap": round(gap, 4),
                f"markov{order}_ca_seed_noise": round(noise, 4),
                f"markov{order}_parcours_seconds": round(our_s, 4),
                f"markov{order}_parcours_model_seconds": round(model_s, 4),
                f"markov{order}_speedup_model_only": round(their_s / model_s, 2),
                f"markov{order}_ca_seconds": round(their_s, 4),
                f"markov{order}_speedup": round(ratio, 2),
                f"markov{order}_speedup_vs_ca_with_read": round(
                    (their_s + their_read_s) / our_s, 2
                ),
                f"markov{order}_states": int(result.extra["states"]),
            }
        )
    rows.append(("(CA input: pandas.read_csv)", "", "", "", seconds(their_read_s), "", ""))
    figures.update(heuristics_exact=heuristic_ok, markov_within_tolerance=markov_ok)
    return Report(
        f"Attribution vs ChannelAttribution 2.2.5 on {source} ({len(frame):,} paths)",
        figures,
        [
            Table(
                "Agreement (channels with >= 5% of conversions for Markov) and time",
                ("model", "max gap", "CA vs CA seed", "Parcours s (model)", "CA s", "speed-up", ""),
                rows,
            )
        ],
    )


def _markov(markov_model: Any, frame: Any, order: int, seed: int) -> dict[str, float]:
    out = markov_model(
        frame,
        "path",
        "total_conversions",
        var_value="total_conversion_value",
        var_null="total_null",
        order=order,
        seed=seed,
        verbose=False,
        flg_pro=False,
    )
    result = out["result"] if isinstance(out, dict) else out
    return dict(zip(result["channel_name"], result["total_conversions"].astype(float), strict=True))
