"""The benchmark harness keeps its contract: list, run one, JSON figures last."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_bare_command_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    listing = capsys.readouterr().out
    assert "demo_generation" in listing
    assert "health" in listing


def test_an_unknown_benchmark_is_refused_with_the_valid_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["nonesuch"]) == 2
    assert "demo_generation" in capsys.readouterr().err


def test_a_run_ends_with_one_json_object_of_figures() -> None:
    """A real `python -m bench` process: its exit code and its stdout's last line."""
    result = bench("health", "--requests", "50", "--rounds", "1", "--warmup", "5")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["parcours_req_per_s"] > 0
    assert "ratio_vs_bare_fastapi" in figures
