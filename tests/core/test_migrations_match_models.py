"""The migrations build exactly the schema the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from parcours.core.db import Database
from parcours.core.migrate import head_revisions
from parcours.registry import metadata

# Search indexes are dialect-specific DDL the models do not describe.
IGNORED_TABLES = {
    "catalog_search",
    "catalog_search_data",
    "catalog_search_idx",
    "catalog_search_docsize",
    "catalog_search_config",
    "catalog_search_content",
}


def test_there_is_one_line_of_migrations() -> None:
    assert len(head_revisions()) == 1


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata())
    relevant = [
        d
        for d in differences
        if not (d[0] == "remove_table" and d[1].name in IGNORED_TABLES)
        and not (d[0] == "remove_index" and d[1].name == "ix_products_search")
    ]
    assert relevant == []
