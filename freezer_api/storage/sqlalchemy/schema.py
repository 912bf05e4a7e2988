"""The schema: alembic migrations, and what is in the database now.

Migrations run in one write transaction holding a lock that keeps two
processes from migrating at once: an advisory lock on PostgreSQL, a named
lock on MySQL/MariaDB, a lock file next to a SQLite database. Statement
time limits are lifted meanwhile: a migration may take long.
"""

import contextlib
import logging
import os

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from freezer_api.storage import errors
from freezer_api.storage.sqlalchemy import engines
from freezer_api.storage.sqlalchemy import failures
from freezer_api.storage.sqlalchemy import models
from freezer_api.storage.sqlalchemy import sqlite

__all__ = ['MIGRATIONS_DIR', 'VERSION_TABLE', 'connection', 'upgrade',
           'drop', 'describe']

LOG = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'migrations')
VERSION_TABLE = 'alembic_version'

# Any constant works: it names the advisory lock guarding schema upgrades.
_PG_SCHEMA_LOCK = 0x66726565  # "free"
_MYSQL_SCHEMA_LOCK = 'freezer_api_schema'


@contextlib.contextmanager
def connection(engine, what, write_options, query_timeout_ms):
    """A connection of ``engine`` in a write transaction, holding the
    schema lock, for ``what``."""
    backend = engine.url.get_backend_name()
    file_lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    if backend == 'sqlite' and not engines.is_memory(engine.url):
        file_lock = sqlite.schema_lock(os.path.abspath(engine.url.database))
    with file_lock:
        try:
            with engine.connect() as conn:
                if write_options:
                    conn = conn.execution_options(**write_options)
                locked = False
                limited = _lift_time_limit(conn, backend, query_timeout_ms)
                try:
                    with conn.begin():
                        if backend == 'postgresql':
                            # NOTE: migrations may take long: no limit
                            # until the end of this transaction.
                            conn.exec_driver_sql(
                                'SET LOCAL statement_timeout = 0')
                            conn.execute(sa.text(
                                'SELECT pg_advisory_xact_lock(:k)'),
                                {'k': _PG_SCHEMA_LOCK})
                        elif backend in ('mysql', 'mariadb'):
                            locked = conn.execute(
                                sa.text('SELECT GET_LOCK(:n, 600)'),
                                {'n': _MYSQL_SCHEMA_LOCK}).scalar() == 1
                            if not locked:
                                LOG.warning('Timed out waiting for the '
                                            'schema lock while %s', what)
                                raise errors.Unavailable(
                                    failures.UNAVAILABLE)
                        yield conn
                finally:
                    # NOTE: a MySQL lock is not released by the end of the
                    # transaction: release it only after the commit, or the
                    # next holder would not see what was written (such as
                    # alembic's version row).
                    if locked:
                        _release_mysql_lock(conn)
                    if limited:
                        _restore_time_limit(conn, query_timeout_ms)
        except sa_exc.SQLAlchemyError as exc:
            raise failures.unavailable(what, exc) from None


def _lift_time_limit(conn, backend, query_timeout_ms):
    """No MySQL/MariaDB statement limit on this session; True when one was
    lifted (see _restore_time_limit)."""
    if backend not in ('mysql', 'mariadb') or not query_timeout_ms:
        return False
    conn.exec_driver_sql(engines.mysql_time_limit_sql(
        0, conn.info.get(engines.MARIADB_INFO)))
    conn.commit()
    return True


def _restore_time_limit(conn, query_timeout_ms):
    try:
        conn.exec_driver_sql(engines.mysql_time_limit_sql(
            query_timeout_ms, conn.info.get(engines.MARIADB_INFO)))
        conn.commit()
    except sa_exc.SQLAlchemyError as exc:
        # NOTE: a connection that cannot be limited is not reused.
        LOG.warning('Cannot restore the statement time limit: %s', exc)
        conn.invalidate()


def _release_mysql_lock(conn):
    try:
        conn.execute(sa.text('SELECT RELEASE_LOCK(:n)'),
                     {'n': _MYSQL_SCHEMA_LOCK})
        conn.commit()
    except sa_exc.SQLAlchemyError as exc:
        # A lost connection has lost its locks with it.
        LOG.warning('Error while releasing the schema lock: %s', exc)


def upgrade(conn):
    """Migrate the schema on ``conn`` (see ``connection``) to the newest
    revision."""
    from alembic import command
    from alembic import config as alembic_config

    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', MIGRATIONS_DIR)
    cfg.attributes['connection'] = conn
    command.upgrade(cfg, 'head')
    if conn.dialect.name == 'sqlite':
        # statistics for the planner from the start (see sqlite.analyze)
        sqlite.analyze(conn.exec_driver_sql)


def drop(conn):
    """Remove every table of the driver, data included."""
    version = sa.Table(VERSION_TABLE, sa.MetaData(),
                       sa.Column('version_num', sa.String(32)))
    models.metadata.drop_all(conn, checkfirst=True)
    version.drop(conn, checkfirst=True)


def describe(conn, backend):
    """The driver's tables, their columns, and the schema revision."""
    ours = set(models.metadata.tables)
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    tables = {
        name: [col['name'] for col in inspector.get_columns(name)]
        for name in sorted(names & ours)
    }
    revision = None
    if VERSION_TABLE in names:
        revision = conn.execute(sa.text(
            # a constant table name, no input
            f'SELECT version_num FROM {VERSION_TABLE}'  # nosec B608
        )).scalar()
    return {'backend': backend, 'tables': tables, 'revision': revision}
