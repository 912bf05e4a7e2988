"""Alembic environment of the SQLAlchemy storage driver.

The driver runs migrations itself and hands over an open connection, already
inside the transaction (and holding the lock) it wants them to run in, as
``config.attributes['connection']``. Run by hand, the database URL comes from
``-x url=...`` or the ``sqlalchemy.url`` option.
"""

from alembic import context
import sqlalchemy as sa

from freezer_api.storage.sqlalchemy import models

config = context.config
target_metadata = models.metadata


def _url():
    url = context.get_x_argument(as_dictionary=True).get('url')
    url = url or config.get_main_option('sqlalchemy.url')
    if not url:
        raise RuntimeError('give the database URL with -x url=...')
    return url


def _configure(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # NOTE: SQLite can only change tables by copying them.
        render_as_batch=connection.dialect.name == 'sqlite',
        compare_type=True,
    )


def run_migrations_offline():
    context.configure(url=_url(), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get('connection')
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
