"""`python -m bench` lists the benchmarks; `python -m bench NAME [options]` runs one."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from bench import Benchmark, BenchmarkError, discover
from bench.report import print_report

USAGE = "usage: python -m bench NAME [options]   (python -m bench NAME --help for its options)"


def list_benchmarks(benchmarks: dict[str, Benchmark]) -> None:
    table = Table("name", "what it measures", title="Benchmarks", title_justify="left")
    for benchmark in benchmarks.values():
        table.add_row(benchmark.name, benchmark.description)
    out = Console()
    out.print(table)
    out.print(USAGE, markup=False, highlight=False, soft_wrap=True)


def main(argv: list[str]) -> int:
    benchmarks = discover()
    if not argv or argv[0] in ("-h", "--help", "--list"):
        list_benchmarks(benchmarks)
        return 0
    name, options = argv[0], argv[1:]
    benchmark = benchmarks.get(name)
    if benchmark is None:
        valid = ", ".join(benchmarks) or "(none found)"
        print(f"unknown benchmark {name!r}; valid names: {valid}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    try:
        report = benchmark.run(options)
    except BenchmarkError as exc:
        print(f"bench {name}: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
