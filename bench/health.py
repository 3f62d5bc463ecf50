"""Requests/s of `GET /health` on the Parcours app against a bare FastAPI app.

Both apps are driven the same way, in-process through ASGI with httpx, one request
at a time; the bare app's handler has the same shape (an `async def` returning the
same dict), so the ratio is what Parcours's middleware, exception handlers and
routing cost. Rounds alternate the apps (and their order) and each app's median
round is kept, which cancels most drift on a shared machine. `--bare-handler sync`
compares with a plain `def` handler instead, which pays FastAPI's thread-pool hop.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp

from bench import BenchmarkError
from bench.report import Figures, Report, Table, count, note, verdict
from parcours import __version__
from parcours.app import create_app
from parcours.core.db import Database
from parcours.core.logs import configure_logging
from parcours.core.migrate import upgrade
from parcours.core.settings import load_settings

DESCRIPTION = "GET /health requests/s: the Parcours app vs a bare FastAPI app (in-process ASGI)"
PARCOURS = "parcours"
BARE = "bare_fastapi"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench health", description=DESCRIPTION)
    parser.add_argument(
        "--requests", type=int, default=5_000, help="requests per app per round (default: 5000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per app (default: 5)")
    parser.add_argument(
        "--warmup", type=int, default=500, help="untimed requests per app first (default: 500)"
    )
    parser.add_argument(
        "--target", type=float, default=0.8, help="least acceptable ratio (default: 0.8)"
    )
    parser.add_argument(
        "--bare-handler",
        choices=("sync", "async"),
        default="async",
        help="the bare app's handler: `async def`, like Parcours's (default), or `def`, "
        "which pays FastAPI's thread-pool hop",
    )
    options = parser.parse_args(argv)
    if options.requests < 1 or options.rounds < 1 or options.warmup < 0:
        parser.error("--requests and --rounds must be at least 1, --warmup at least 0")
    return options


def bare_app(handler: str = "sync") -> FastAPI:
    """FastAPI with nothing but a `/health` route answering what Parcours answers."""
    app = FastAPI()

    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    async def health_async() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.get("/health")(health if handler == "sync" else health_async)
    return app


@contextmanager
def parcours_app() -> Iterator[FastAPI]:
    """The real app on a migrated SQLite database in a temporary folder."""
    configure_logging("WARNING", "json")  # the access log is INFO: measured, not printed
    with TemporaryDirectory(prefix="parcours-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        settings = load_settings(database_url=url, data_dir=Path(folder), log_level="WARNING")
        db = Database.connect(url)
        try:
            upgrade(db)
            yield create_app(settings, db)
        finally:
            db.dispose()


@dataclass
class Samples:
    """Per-round throughput and every request's latency, for one app."""

    req_per_s: list[float] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)

    @property
    def median_req_per_s(self) -> float:
        return statistics.median(self.req_per_s)

    def percentile_us(self, q: float) -> float:
        ordered = sorted(self.latencies_ns)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000


async def _requests(client: httpx.AsyncClient, n: int, samples: Samples | None) -> None:
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        sent = time.perf_counter_ns()
        response = await client.get("/health")
        latencies.append(time.perf_counter_ns() - sent)
        if response.status_code != 200:
            raise BenchmarkError(f"GET /health answered {response.status_code}: {response.text}")
    if samples is not None:
        samples.req_per_s.append(n / (time.perf_counter() - started))
        samples.latencies_ns.extend(latencies)


async def measure(apps: dict[str, ASGIApp], options: argparse.Namespace) -> dict[str, Samples]:
    async with AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
            )
            for name, app in apps.items()
        }
        return await _rounds(clients, options)


async def _rounds(
    clients: dict[str, httpx.AsyncClient], options: argparse.Namespace
) -> dict[str, Samples]:
    bodies = {name: (await client.get("/health")).json() for name, client in clients.items()}
    if len({repr(body) for body in bodies.values()}) != 1:
        raise BenchmarkError(f"the apps answer different bodies: {bodies}")
    for name, client in clients.items():
        note(f"warm-up: {options.warmup} requests on {name}")
        await _requests(client, options.warmup, None)
    samples = {name: Samples() for name in clients}
    names = list(clients)
    for round_index in range(options.rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            await _requests(clients[name], options.requests, samples[name])
        rates = ", ".join(f"{n} {samples[n].req_per_s[-1]:,.0f} req/s" for n in names)
        note(f"round {round_index + 1}/{options.rounds}: {rates}")
    return samples


def run(argv: list[str]) -> Report:
    options = parse(argv)
    with parcours_app() as app:
        bare = bare_app(options.bare_handler)
        samples = asyncio.run(measure({PARCOURS: app, BARE: bare}, options))
    return _report(samples, options)


def _report(samples: dict[str, Samples], options: argparse.Namespace) -> Report:
    ratio = samples[PARCOURS].median_req_per_s / samples[BARE].median_req_per_s
    passed = ratio >= options.target
    figures: Figures = {}
    rows: list[Sequence[str]] = []
    for name in (PARCOURS, BARE):
        app_samples = samples[name]
        p50, p99 = app_samples.percentile_us(0.50), app_samples.percentile_us(0.99)
        figures[f"{name}_req_per_s"] = round(app_samples.median_req_per_s)
        figures[f"{name}_p50_us"] = round(p50)
        figures[f"{name}_p99_us"] = round(p99)
        spread = f"{min(app_samples.req_per_s):,.0f}–{max(app_samples.req_per_s):,.0f}"
        rows.append((name, count(app_samples.median_req_per_s), spread, count(p50), count(p99)))
    figures.update(
        {
            "ratio_vs_bare_fastapi": round(ratio, 3),
            "target_ratio": options.target,
            "meets_target": passed,
            "requests_per_round": options.requests,
            "rounds": options.rounds,
            "bare_handler": options.bare_handler,
        }
    )
    apps = Table(
        "Apps", ("app", "req/s (median round)", "rounds min–max", "p50 µs", "p99 µs"), rows
    )
    verdict_rows = [
        (f"ratio vs bare FastAPI (target ≥ {options.target})", f"{ratio:.3f}", verdict(passed))
    ]
    handler = "def" if options.bare_handler == "sync" else "async def"
    title = (
        f"GET /health over in-process ASGI (httpx): {options.rounds} rounds × "
        f"{options.requests:,} requests per app; bare handler: {handler}"
    )
    return Report(title, figures, [apps, Table("Verdict", ("what", "value", ""), verdict_rows)])
