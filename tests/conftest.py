"""Fixtures shared by the whole suite.

`db` runs a test once on SQLite and once on a real PostgreSQL server started for the
session. Each test gets its own database, cloned from a template migrated once.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from parcours.app import create_app
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.migrate import upgrade
from parcours.core.settings import Settings, load_settings
from tests.pg_server import PostgresServer

BACKENDS = ["sqlite", "postgres"]
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_url_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A function making a fresh, migrated PostgreSQL database per call."""
    external = os.environ.get("PARCOURS_TEST_POSTGRES_URL")
    server = None if external else PostgresServer.start()
    admin_url = external or server.url("postgres")  # type: ignore[union-attr]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    template = f"parcours_tpl_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{template}"'))
        conn.execute(text(f'CREATE DATABASE "{template}"'))
    tpl_url = _with_database(admin_url, template)
    tpl = Database.connect(tpl_url)
    upgrade(tpl)
    tpl.dispose()

    def make() -> str:
        name = f"parcours_t{os.getpid()}_{next(_counter)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        return _with_database(admin_url, name)

    yield make
    admin.dispose()
    if server is not None:
        server.stop()


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database.connect(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


def fresh_database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "parcours.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    make = request.getfixturevalue("postgres_url_factory")
    return str(make())  # type: ignore[operator]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    database = Database.connect(fresh_database_url(request, request.param, tmp_path))
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database, for tests about SQLite itself or the console."""
    database = Database.connect(fresh_database_url(request, "sqlite", tmp_path))
    yield database
    database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 14, 9, 30, tzinfo=UTC))


def make_settings(tmp_path: Path, db: Database, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db.engine.url.render_as_string(hide_password=False),
        "data_dir": tmp_path / "data",
        "log_format": "text",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def _warm_app() -> list[FastAPI]:
    """The worker's application once a test has made it: see `client`."""
    return []


@pytest.fixture
async def client(
    db: Database, clock: ManualClock, tmp_path: Path, _warm_app: list[FastAPI]
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process HTTP client on the app, for each backend.

    FastAPI prepares an application's routes on its first requests, about a second for
    ours, so a worker keeps one application and gives it, for each test, the whole state
    (settings, database, clock, registry hooks) of an application made for that test.
    """
    fresh = create_app(make_settings(tmp_path, db), db, clock)
    if not _warm_app:
        _warm_app.append(fresh)
    app = _warm_app[0]
    app.state = fresh.state
    app.dependency_overrides.clear()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parcours.test") as http:
        yield http


@pytest.fixture(autouse=True)
def _promotion_hook_restored() -> Iterator[None]:
    """`create_app` installs the loyalty promotions engine process-wide; put back the
    hook after each test so tests of carts without the app see the orders default."""
    from parcours import orders

    orders.set_promotion_hook(orders.NoPromotions())
    yield
    orders.set_promotion_hook(orders.NoPromotions())


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2id at its lowest cost for the run. With the production parameters a hash
    and a check take about 0.2 s each, paid by every test that creates a user and logs
    in; what the tests check (argon2id hashes, wrong passwords refused, the timing
    equaliser) does not depend on the cost. Subprocess tests keep the real parameters."""
    from argon2 import PasswordHasher

    from parcours.core import auth

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
        auth._dummy_hash.cache_clear()
        yield
    auth._dummy_hash.cache_clear()
