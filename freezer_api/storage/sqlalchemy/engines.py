"""The database URL and the SQLAlchemy engine, per dialect.

SQLite connections are set up by ``sqlite.configure``; PostgreSQL sessions
get ``statement_timeout`` from the connect options, MySQL and MariaDB
sessions their own statement limit when they connect
(``set_mysql_time_limit``).
"""

import functools
import logging
import os

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy import pool as sa_pool

from freezer_api.storage import errors
from freezer_api.storage.sqlalchemy import sqlite

__all__ = ['url', 'create', 'is_memory', 'mysql_time_limit_sql',
           'MARIADB_INFO']

LOG = logging.getLogger(__name__)

_NOT_USABLE = 'the [database] connection option is not usable'
# Where a pooled MySQL connection records whether the server is MariaDB.
MARIADB_INFO = 'freezer_mariadb'


def url(conf):
    """The URL of ``[database] connection`` (by default a SQLite file in
    ``state_path``), naming installed drivers."""
    raw = conf.database.connection
    if not raw:
        state_path = conf.state_path
        try:
            # NOTE: only the service (and its group) may enter.
            os.makedirs(state_path, mode=0o750, exist_ok=True)
        except OSError as exc:
            LOG.error('Cannot create state_path %s: %s', state_path, exc)
        raw = 'sqlite:///' + os.path.join(state_path, 'freezer-api.sqlite')
    try:
        parsed = sa.engine.make_url(raw)
    except sa_exc.ArgumentError:
        LOG.error('[database] connection is not a database URL')
        raise errors.Unavailable(_NOT_USABLE) from None
    # NOTE: pick the DBAPI drivers this project depends on when the URL
    # names none and the usual default is not installed.
    if parsed.drivername == 'postgresql' and not _importable('psycopg2'):
        parsed = parsed.set(drivername='postgresql+psycopg')
    elif parsed.drivername in ('mysql', 'mariadb') and not _importable(
            'MySQLdb'):
        parsed = parsed.set(drivername=parsed.drivername + '+pymysql')
    if parsed.get_backend_name() in ('mysql', 'mariadb') and (
            'charset' not in parsed.query):
        parsed = parsed.update_query_dict({'charset': 'utf8mb4'})
    return parsed


def is_memory(db_url):
    return (db_url.get_backend_name() == 'sqlite'
            and db_url.database in (None, '', ':memory:'))


def create(db_url, db, query_timeout_ms, pool_size=None):
    """The engine of ``db_url`` configured by the ``[database]`` group
    ``db``; server statements limited to ``query_timeout_ms`` (0: none).
    ``pool_size``: the connections of a SQLite file, in place of the
    configured pool (no overflow)."""
    backend = db_url.get_backend_name()
    kwargs = {'echo': db.connection_debug}
    if backend == 'sqlite':
        kwargs['connect_args'] = {
            'check_same_thread': False,
            'timeout': db.sqlite_busy_timeout / 1000.0,
        }
        if is_memory(db_url):
            kwargs['poolclass'] = sa_pool.StaticPool
        else:
            kwargs.update(
                poolclass=sa_pool.QueuePool,
                pool_size=db.max_pool_size if pool_size is None else pool_size,
                max_overflow=db.max_overflow if pool_size is None else 0,
                pool_timeout=db.pool_timeout)
    else:
        kwargs.update(pool_size=db.max_pool_size,
                      max_overflow=db.max_overflow,
                      pool_timeout=db.pool_timeout,
                      pool_recycle=3600,
                      isolation_level='READ COMMITTED')
        if backend == 'postgresql' and query_timeout_ms:
            kwargs['connect_args'] = {
                'options': f'-c statement_timeout={query_timeout_ms}'}
    try:
        engine = sa.create_engine(db_url, **kwargs)
    except (sa_exc.ArgumentError, ImportError) as exc:
        text = str(exc)
        if db_url.password:
            text = text.replace(str(db_url.password), '***')
        LOG.error('Cannot use [database] connection: %s', text)
        raise errors.Unavailable(_NOT_USABLE) from None
    if backend == 'sqlite':
        sqlite.configure(engine, db.sqlite_busy_timeout, is_memory(db_url))
    elif backend in ('mysql', 'mariadb'):
        _limit_mysql_sessions(engine, query_timeout_ms)
    return engine


def _limit_mysql_sessions(engine, limit_ms):
    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_conn, record):
        record.info[MARIADB_INFO] = _set_mysql_time_limit(
            dbapi_conn, limit_ms, None)
        # NOTE: the driver's transaction must not undo nor hold it.
        dbapi_conn.commit()


def mysql_time_limit_sql(limit_ms, mariadb):
    """The statement limiting a MySQL/MariaDB session to ``limit_ms``."""
    if mariadb:
        return f'SET SESSION max_statement_time = {limit_ms / 1000:.3f}'
    # NOTE: MySQL's limit applies to read-only SELECTs only.
    return f'SET SESSION max_execution_time = {int(limit_ms)}'


def _set_mysql_time_limit(dbapi_conn, limit_ms, mariadb):
    """Limit the statements of a MySQL/MariaDB session to ``limit_ms``
    (0: no limit); return whether the server is MariaDB."""
    cursor = dbapi_conn.cursor()
    try:
        if mariadb is None:
            cursor.execute('SELECT VERSION()')
            mariadb = 'mariadb' in str(cursor.fetchone()[0]).lower()
        cursor.execute(mysql_time_limit_sql(limit_ms, mariadb))
        return mariadb
    finally:
        cursor.close()


@functools.lru_cache(maxsize=None)
def _importable(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True
