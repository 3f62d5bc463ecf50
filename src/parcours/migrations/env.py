"""Alembic environment: the URL and connection come from `parcours.core.migrate`."""

from __future__ import annotations

from alembic import context

from parcours.registry import metadata

config = context.config
target_metadata = metadata()


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `parcours init` (parcours.core.migrate)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
