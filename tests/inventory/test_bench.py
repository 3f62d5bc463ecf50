"""The reservation benchmark proves its point on a small race."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_reservation_race_grants_exactly_the_units_in_stock() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "inventory_reservations",
            "--attempts",
            "60",
            "--units",
            "7",
            "--threads",
            "8",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["granted"], figures["conflicts"], figures["oversold"]) == (7, 53, 0)
    assert figures["exactly_units_granted"] is True
