"""Parcours benchmarks: one module per capability, run with `python -m bench NAME`.

A benchmark is a module `bench/<name>.py` defining `DESCRIPTION: str` and
`run(argv: list[str]) -> Report`; it parses its own options (argparse) and returns
its tables and figures, which `python -m bench` prints (see `bench.report`).
Modules whose name starts with `_`, and modules without both attributes (such as
`report`), are helpers, not benchmarks.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from bench.report import Report


class BenchmarkError(Exception):
    """A benchmark cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[list[str]], Report]


def discover() -> dict[str, Benchmark]:
    """Every benchmark module of this package, by name, sorted."""
    found: dict[str, Benchmark] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        description = getattr(module, "DESCRIPTION", None)
        run = getattr(module, "run", None)
        if isinstance(description, str) and callable(run):
            found[info.name] = Benchmark(info.name, description, run)
    return found
