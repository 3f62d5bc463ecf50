"""Unique promo codes: generation in memory, generation + insertion into SQLite, and the
check-character validation that refuses typos before any lookup.

The peer in the same process is a plain Python loop drawing each code with
`secrets.choice` and computing its check symbol one at a time (what a first version
would do), so the ratio shows what the vectorised path buys.
"""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import func, select

from bench.report import Report, Table, count, note, seconds, verdict
from parcours.core.db import Database
from parcours.core.migrate import upgrade
from parcours.loyalty import codes, offers, promotions
from parcours.loyalty.models import PromoCode

DESCRIPTION = "1M unique promo codes: generated, inserted into SQLite, validated by check symbol"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench promo_codes", description=DESCRIPTION)
    parser.add_argument("--count", type=int, default=1_000_000, help="codes (default: 1000000)")
    parser.add_argument("--prefix", default="BNCH", help="code prefix (default: BNCH)")
    options = parser.parse_args(argv)
    if options.count < 1:
        parser.error("--count must be at least 1")
    return options


def naive(count: int, prefix: str) -> list[str]:
    """The peer: one code at a time, pure Python."""
    out = []
    for _ in range(count):
        body = prefix + "".join(secrets.choice(codes.ALPHABET) for _ in range(codes.RANDOM_LENGTH))
        out.append(body + codes.check_symbol(body))
    return out


def run(argv: list[str]) -> Report:
    options = parse(argv)
    n, prefix = options.count, options.prefix
    began = time.perf_counter()
    generated = codes.generate(n, prefix)
    in_memory = time.perf_counter() - began
    peer_n = min(n, 100_000)
    began = time.perf_counter()
    naive(peer_n, prefix)
    peer = (time.perf_counter() - began) * n / peer_n
    began = time.perf_counter()
    valid = sum(codes.has_valid_check(c) for c in generated)
    checking = time.perf_counter() - began
    typos = [c[:-2] + ("A" if c[-2] != "A" else "B") + c[-1] for c in generated[:10_000]]
    caught = sum(not codes.has_valid_check(t) for t in typos)
    note(f"inserting {n:,} codes into a temporary SQLite file")
    with TemporaryDirectory(prefix="parcours-bench-") as folder:
        db = Database.connect(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            upgrade(db)
            now = datetime.now(UTC)
            with db.transaction() as session:
                promotions.add_promotion(session, now, {
                    "key": "bench", "name_fr": "Banc", "name_en": "Bench", "kind": "percent_off",
                    "percent_bp": 1000,
                })  # fmt: skip
            began = time.perf_counter()
            with db.transaction() as session:
                offers.generate_codes(session, now, "bench", n, prefix=prefix)
            stored_s = time.perf_counter() - began
            with db.transaction() as session:
                stored = session.scalar(select(func.count()).select_from(PromoCode)) or 0
        finally:
            db.dispose()
    figures: dict[str, float | int | str | bool] = {
        "codes": n,
        "generate_s": round(in_memory, 3),
        "generate_codes_per_s": round(n / in_memory),
        "naive_codes_per_s": round(n / peer),
        "ratio_vs_naive": round(peer / in_memory, 1),
        "generate_and_insert_sqlite_s": round(stored_s, 3),
        "insert_codes_per_s": round(n / stored_s),
        "stored": stored,
        "check_validations_per_s": round(n / checking),
        "all_valid": valid == n,
        "typos_caught": caught,
        "typos_tried": len(typos),
    }
    rows = [
        ("generate in memory", seconds(in_memory), count(n / in_memory)),
        ("naive Python loop (peer)", seconds(peer), count(n / peer)),
        ("generate + insert into SQLite", seconds(stored_s), count(n / stored_s)),
        ("check-symbol validation", seconds(checking), count(n / checking)),
    ]
    checks = [
        (f"{n:,} codes stored", f"{stored:,}", verdict(stored == n)),
        ("every code passes its check", str(valid == n), verdict(valid == n)),
        ("typos caught", f"{caught}/{len(typos)}", verdict(caught == len(typos))),
        ("under a minute on SQLite", seconds(stored_s), verdict(stored_s < 60)),
    ]
    return Report(
        f"Promo codes: {n:,} unique codes",
        figures,
        [
            Table("Throughput", ("what", "seconds", "codes/s"), rows),
            Table("Verdict", ("what", "value", ""), checks),
        ],
    )
