"""The demo retailer: deterministic, valid, and placed in real French cities."""

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from parcours.core.db import Database
from parcours.core.errors import Conflict
from parcours.core.geo import GeoPoint, haversine_km
from parcours.demo.cities import french_cities
from parcours.demo.generator import SIZES, generate
from tests.conftest import BACKENDS, fresh_database_url, make_settings

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
# The steps that build on the two years of activity, left out by the quick generations.
NO_HISTORY = ("activity", "activation")
# The later steps, whose rows `_digest` does not read.
UNDIGESTED = ("orders", "footfall", "users")


@dataclass(frozen=True)
class GeneratedDemo:
    db: Database
    report: dict[str, float]
    data_dir: Path


def _generate_once(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    seed: int,
    skip: tuple[str, ...],
) -> Iterator[GeneratedDemo]:
    folder = tmp_path_factory.mktemp(f"demo-{backend}-{seed}")
    db = Database.connect(fresh_database_url(request, backend, folder))
    settings = make_settings(folder, db)
    report = generate(db, seed, "tiny", AS_OF, skip=skip, settings=settings)
    yield GeneratedDemo(db, report, settings.data_dir)
    db.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def demo_without_history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GeneratedDemo]:
    """A tiny demo (seed 3) without the two years of activity, generated once per backend
    for the tests that only read it; the marketing side still runs on what exists."""
    yield from _generate_once(request, tmp_path_factory, request.param, 3, ("activity",))


@pytest.fixture(scope="module")
def demo_with_history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GeneratedDemo]:
    """The whole tiny demo (seed 7) on SQLite, generated once for the tests that only
    read it."""
    yield from _generate_once(request, tmp_path_factory, "sqlite", 7, ())


# Profiles the identity graph creates from events get fresh ids, so customers and events
# are compared on their content.
DIGESTED = (
    "SELECT * FROM stores ORDER BY id",
    "SELECT * FROM consents ORDER BY id",
    "SELECT customer_number, email, phone, first_name, last_name, birth_date, postcode"
    " FROM customers ORDER BY email, customer_number, phone, first_name, last_name",
    "SELECT message_id, type, event, user_id, anonymous_id, timestamp FROM events ORDER BY seq",
)


def _digest(db: Database) -> str:
    """A fingerprint of the generated rows."""
    digest = hashlib.sha256()
    with db.engine.connect() as conn:
        for query in DIGESTED:
            for row in conn.execute(text(query)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def test_the_same_seed_gives_the_same_retailer(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    demo_with_history: GeneratedDemo,
) -> None:
    runs = [_digest(demo_with_history.db)]
    for name, seed in (("again", 7), ("other", 8)):
        folder = tmp_path / name
        folder.mkdir()
        db = Database.connect(fresh_database_url(request, "sqlite", folder))
        # Another seed differs from the first step on: it skips the long history and the
        # steps the digest does not read.
        skip = NO_HISTORY + UNDIGESTED if seed != 7 else ()
        settings = make_settings(folder, db)
        generate(db, seed, "tiny", AS_OF, skip=skip, settings=settings)
        runs.append(_digest(db))
        db.dispose()
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_the_demo_fills_every_backend_with_valid_people(
    demo_without_history: GeneratedDemo,
) -> None:
    assert demo_without_history.report["customers"] == SIZES["tiny"].customers
    with demo_without_history.db.engine.connect() as conn:
        # The people the demo enrolled (profiles made from events have no consents).
        enrolled = "SELECT customer_id FROM consents"
        emails = [
            r[0]
            for r in conn.execute(text(f"SELECT email FROM customers WHERE id IN ({enrolled})"))
        ]
        phones = [
            r[0]
            for r in conn.execute(
                text(f"SELECT phone FROM customers WHERE phone IS NOT NULL AND id IN ({enrolled})")
            )
        ]
        births = [
            r[0]
            for r in conn.execute(
                text("SELECT birth_date FROM customers WHERE birth_date IS NOT NULL")
            )
        ]
        consents = conn.execute(text("SELECT COUNT(DISTINCT customer_id) FROM consents")).scalar()
        users = [r[0] for r in conn.execute(text("SELECT username FROM users ORDER BY username"))]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z0-9.-]+@[a-z.]+\.(com|org|net|example)", e) for e in emails)
    assert all(re.fullmatch(r"\+33[67]\d{8}", p) for p in phones)
    assert len(phones) > 0.7 * len(emails)
    years = [int(str(b)[:4]) for b in births]  # SQLite returns text, PostgreSQL a date
    assert all(AS_OF.year - 86 <= y <= AS_OF.year - 18 for y in years)
    assert consents == len(emails)
    assert users == ["admin", "marketing", "vendeur"]


def test_the_demo_history_gives_the_identity_graph_real_work(
    demo_with_history: GeneratedDemo,
) -> None:
    # On SQLite only: the ingestion and the graph are tested on both backends elsewhere.
    db, report = demo_with_history.db, demo_with_history.report
    assert report["events"] > 20 * SIZES["tiny"].customers
    with db.engine.connect() as conn:
        channels = {r[0] for r in conn.execute(text("SELECT DISTINCT channel FROM events"))}
        merges = conn.execute(text("SELECT COUNT(*) FROM identity_merges")).scalar()
        blocked = conn.execute(
            text("SELECT COUNT(*) FROM identity_identifiers WHERE value = 'test@test.com'")
        ).scalar()
        in_store = conn.execute(
            text("SELECT COUNT(*) FROM events WHERE channel = 'store' AND store_id IS NOT NULL")
        ).scalar()
        sold = {
            r[0]: r[1]
            for r in conn.execute(text("SELECT channel, SUM(total) FROM orders GROUP BY channel"))
        }
        modes = {r[0] for r in conn.execute(text("SELECT DISTINCT mode FROM fulfilments"))}
        returned = conn.execute(text("SELECT COUNT(*) FROM returns")).scalar()
    assert {"web", "app", "store", "call_centre", "email"} <= channels
    # Every purchase of the history is an order; most revenue is made in store.
    assert report["orders"] > 0
    assert sold["store"] > sold["web"] + sold["app"]
    assert {"carry_out", "home_delivery", "click_and_collect"} <= modes
    assert (returned or 0) > 0
    assert (merges or 0) > 0
    assert blocked == 0
    assert (in_store or 0) > 0
    _the_marketing_side_is_alive(db, demo_with_history.data_dir)


def _the_marketing_side_is_alive(db: Database, data_dir: Path) -> None:
    """Points for the history, segments with members, past campaigns read and clicked
    (their e-mails on disk), journeys with people waiting."""
    with db.engine.connect() as conn:

        def count(sql: str) -> int:
            return int(conn.execute(text(sql)).scalar() or 0)

        empty_segments = count("SELECT COUNT(*) FROM segments WHERE member_count = 0")
        assert count("SELECT COUNT(*) FROM segments") == 9  # eight, and the win-back journey's
        assert empty_segments <= 1  # a 60-day window may be empty on a tiny demo
        assert count("SELECT COUNT(*) FROM campaigns WHERE status = 'sent'") == 2
        assert count("SELECT COUNT(*) FROM message_deliveries WHERE opened_at IS NOT NULL") > 0
        assert count("SELECT COUNT(*) FROM message_deliveries WHERE clicked_at IS NOT NULL") > 0
        assert count("SELECT COUNT(*) FROM points_ledger WHERE kind = 'earn'") > 0
        assert count("SELECT COUNT(*) FROM journey_instances WHERE status = 'active'") > 0
    assert any((data_dir / "mail").glob("*.eml"))


def test_stores_stand_in_real_french_cities(demo_without_history: GeneratedDemo) -> None:
    cities = {c.name: c for c in french_cities()}
    with demo_without_history.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT city, lat, lon, timezone, kind FROM stores")).all()
    assert len(rows) == SIZES["tiny"].stores + SIZES["tiny"].warehouses
    for city, lat, lon, zone, _kind in rows:
        reference = cities[city]
        assert haversine_km(GeoPoint(lat, lon), GeoPoint(reference.lat, reference.lon)) < 5
        assert zone == reference.timezone


def test_the_city_table_holds_true_coordinates() -> None:
    cities = {c.name: c for c in french_cities()}
    paris, lyon, marseille = cities["Paris"], cities["Lyon"], cities["Marseille"]
    point = lambda c: GeoPoint(c.lat, c.lon)  # noqa: E731
    assert haversine_km(point(paris), point(lyon)) == pytest.approx(392, rel=0.02)
    assert haversine_km(point(paris), point(marseille)) == pytest.approx(661, rel=0.02)
    assert len({c.insee for c in french_cities()}) == len(french_cities())


def test_the_demo_is_only_generated_into_an_empty_database(
    demo_without_history: GeneratedDemo,
) -> None:
    with pytest.raises(Conflict, match="empty database"):
        generate(demo_without_history.db, seed=3, size="tiny", now=AS_OF, skip=NO_HISTORY)
