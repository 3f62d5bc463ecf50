"""Throwaway databases for benchmarks that compare SQLite with PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from parcours.core.db import Database


@contextmanager
def postgres_databases(count: int) -> Iterator[list[Database]]:
    """`count` empty databases on a PostgreSQL server started for the run (the test
    suite's throwaway server: needs the PostgreSQL binaries), removed afterwards."""
    from sqlalchemy import create_engine, text
    from tests.pg_server import PostgresServer

    server = PostgresServer.start()
    try:
        admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for n in range(count):
                conn.execute(text(f"CREATE DATABASE bench_{n}"))
        admin.dispose()
        dbs = [Database.connect(server.url(f"bench_{n}")) for n in range(count)]
        try:
            yield dbs
        finally:
            for db in dbs:
                db.dispose()
    finally:
        server.stop()
