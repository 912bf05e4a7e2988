"""What the migration tests share: running alembic to a revision, and
reading back the tables and indexes a database holds."""

import sqlalchemy as sa
from alembic import command
from alembic import config as alembic_config

from freezer_api.storage.sqlalchemy import schema as sql_schema


def migrate(driver, revision, downgrade=False):
    """Upgrade (or downgrade) the driver's database to ``revision``."""
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', sql_schema.MIGRATIONS_DIR)
    with driver._schema_connection('migrating') as conn:
        cfg.attributes['connection'] = conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)


def _inspect(url, read):
    engine = sa.create_engine(url)
    try:
        return read(sa.inspect(engine))
    finally:
        engine.dispose()


def tables(url):
    return _inspect(url, lambda found: set(found.get_table_names()))


def indexes(url, table):
    return _inspect(url, lambda found: sorted(
        index['name'] for index in found.get_indexes(table)))
