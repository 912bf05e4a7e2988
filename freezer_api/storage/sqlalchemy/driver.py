"""Storage driver on SQLAlchemy: SQLite (embedded), PostgreSQL, MySQL.

Documents are JSON text in one table per kind; searches run on the inverted
index ``<kind>_terms`` (see ``models``), never by loading documents.

Concurrency
    On SQLite every ``atomic`` change starts with ``BEGIN IMMEDIATE``, so
    writers, even in different processes, take turns on the file (waiting up
    to ``[database] sqlite_busy_timeout``) and never lose a race. Writers
    queue on a lock file (``<database>.writer``) before they begin: SQLite's
    own wait for a locked file polls with sleeps growing to 100 ms, during
    which other writers keep taking the file, so under load a writer could
    wait far longer than the others (see ``_WriterQueue``). Server
    databases use optimistic concurrency instead: updates and deletes are
    conditional on the version that was read, and a change that lost a race
    (or hit a deadlock or serialization failure) is rolled back and run again
    after a short random pause, up to ``[database] max_retries`` times. The
    re-runs read with ``SELECT ... FOR UPDATE``: under contention they wait
    for the row instead of losing the race again.
"""

import contextlib
import dataclasses
import fcntl
import functools
import json
import logging
import os
import threading
import time
import weakref

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy import pool as sa_pool
from sqlalchemy.dialects import postgresql as pg_dialect

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.sqlalchemy import audit
from freezer_api.storage.sqlalchemy import models

__all__ = ['SQLAlchemyDriver']

LOG = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'migrations')
VERSION_TABLE = 'alembic_version'

# Any constant works: it names the advisory lock guarding schema upgrades.
_PG_SCHEMA_LOCK = 0x66726565  # "free"
_MYSQL_SCHEMA_LOCK = 'freezer_api_schema'


_UNAVAILABLE = 'the database is unavailable'
_MAX_OFFSET = 2 ** 63 - 1
# Compiled statements kept per driver (see _Prepared).
_MAX_PREPARED = 512
# SQLite statistics are refreshed at this process's first WAL checkpoint
# and then every ANALYZE_EVERY checkpoints (CHECKPOINT_EVERY writes each),
# sampling ANALYZE_ROWS rows per index.
ANALYZE_EVERY = 64
ANALYZE_ROWS = 1000

# Outcomes of _classify.
_RETRY = 'retry'          # lost a race: run the change again
_DUPLICATE = 'duplicate'  # unique violation
_BUSY = 'busy'            # SQLite stayed locked for the whole busy timeout
_TIMEOUT = 'timeout'      # the query ran past [database] query_timeout
_DISCONNECT = 'disconnect'  # a pooled connection was dead
_FAILED = 'failed'        # anything else: server down, bad schema, ...

# PostgreSQL SQLSTATEs and MySQL error numbers meaning "lost a race".
_PG_RETRY = {'40001', '40P01', '55P03'}
_PG_DUPLICATE = {'23505'}
_MYSQL_RETRY = {1205, 1213}
_MYSQL_DUPLICATE = {1062}
# Statements stopped by their time limit: PostgreSQL query_canceled,
# MariaDB max_statement_time, MySQL max_execution_time, SQLite interrupt.
_PG_TIMEOUT = {'57014'}
_MYSQL_TIMEOUT = {1969, 3024}
_SQLITE_INTERRUPT = 9
# SQLite primary result codes.
_SQLITE_BUSY = {5, 6}
# SQLite virtual machine steps between two looks at the clock.
_PROGRESS_STEPS = 10000
_QUERY_TIMEOUT = ('the query ran longer than the database allows '
                  '([database] query_timeout)')
# SQLite extended result codes of unique and primary key violations.
_SQLITE_DUPLICATE = {2067, 1555}


def _classify(exc):
    orig = getattr(exc, 'orig', None)
    if getattr(exc, 'connection_invalidated', False):
        return _DISCONNECT
    args = getattr(orig, 'args', None)
    if args and isinstance(args[0], int):
        # NOTE: MySQL drivers raise (error number, message). Look at the
        # number first: PyMySQL 1.2+ also sets ``sqlstate``, which is too
        # coarse there (a duplicate key is the generic 23000).
        if args[0] in _MYSQL_RETRY:
            return _RETRY
        if args[0] in _MYSQL_TIMEOUT:
            return _TIMEOUT
        if args[0] in _MYSQL_DUPLICATE:
            return _DUPLICATE
        return _FAILED
    sqlstate = getattr(orig, 'sqlstate', None) or getattr(orig, 'pgcode', None)
    if sqlstate:
        if sqlstate in _PG_RETRY:
            return _RETRY
        if sqlstate in _PG_TIMEOUT:
            return _TIMEOUT
        if sqlstate in _PG_DUPLICATE:
            return _DUPLICATE
        return _FAILED
    code = getattr(orig, 'sqlite_errorcode', None)
    if code is not None:
        if (code & 0xff) in _SQLITE_BUSY:
            return _BUSY
        if (code & 0xff) == _SQLITE_INTERRUPT:
            return _TIMEOUT
        if code in _SQLITE_DUPLICATE:
            return _DUPLICATE
        return _FAILED
    return _FAILED


def _unavailable(what, exc):
    # NOTE: the original error may hold SQL, parameters and hosts: it goes
    # to the log only, never into the message.
    if _classify(exc) == _TIMEOUT:
        LOG.warning('Query stopped at its time limit while %s', what)
        return errors.QueryTimeout(_QUERY_TIMEOUT)
    LOG.warning('Database error while %s: %s', what, exc)
    return errors.Unavailable(_UNAVAILABLE)


def _mysql_time_limit_sql(limit_ms, mariadb):
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
        cursor.execute(_mysql_time_limit_sql(limit_ms, mariadb))
        return mariadb
    finally:
        cursor.close()


class _Deadline:
    """When the SQLite statement under way must stop (None: never).

    One per pooled SQLite connection, read by its progress handler: SQLite
    has no statement timeout of its own.
    """

    __slots__ = ('at',)

    def __init__(self):
        self.at = None

    def __call__(self):
        at = self.at
        return 1 if at is not None and time.monotonic() > at else 0


def _dumps(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(',', ':'))


def _scope_filter(table, scope):
    conds = []
    if scope.project_id is not None:
        conds.append(table.c.project_id == scope.project_id)
    if scope.user_id is not None:
        conds.append(table.c.user_id == scope.user_id)
    return conds


def _record_key(kind, project_id, doc_id):
    if kind in base.PROJECT_UNIQUE_KINDS:
        return (kind, project_id, doc_id)
    return (kind, None, doc_id)


def _identity_filter(table, kind, project_id, doc_id):
    if kind in base.PROJECT_UNIQUE_KINDS:
        return [table.c.project_id == project_id, table.c.id == doc_id]
    return [table.c.id == doc_id]


def _check_kind(kind):
    if kind not in models.documents:
        raise ValueError(f'unknown kind of document: {kind!r}')


class _Prepared:
    """A read statement compiled once to this engine's own SQL.

    PERF: building a SQLAlchemy statement, computing its cache key and
    running it through a Connection cost about 0.45 ms per GET of one
    document, ten times the query itself. The hot reads are built once per
    shape with named parameters, compiled once per engine, and run as
    plain SQL with their values.
    """

    __slots__ = ('sql', 'names', 'constants')

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = (tuple(compiled.positiontup) if compiled.positional
                      else None)
        # parameters the statement fixed itself (such as LIMIT 1)
        self.constants = {name: value
                          for name, value in compiled.params.items()
                          if value is not None}

    def parameters(self, values):
        if self.constants:
            values = {**self.constants, **values}
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)


def _record_columns(table):
    return (table.c.id, table.c.project_id, table.c.user_id,
            table.c.version, table.c.created_at, table.c.doc)


_LIKE_ESCAPE = '/'


def _like_escape(text):
    """``text`` matched literally inside a LIKE pattern."""
    return (text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
            .replace('%', _LIKE_ESCAPE + '%').replace('_', _LIKE_ESCAPE + '_'))


def _path_keys(path):
    """The keys a leaf at ``path`` may have: the part after any dot, or
    all of it (keys may hold dots themselves)."""
    keys = [path[i + 1:] for i, char in enumerate(path) if char == '.']
    keys.append(path)
    return keys


def _get_values(doc_id, scope):
    """Parameters of ``_get_statement``; None when nothing can match."""
    values = {'doc_id': doc_id}
    if scope.project_id is not None:
        values['project_id'] = scope.project_id
    if scope.user_id is not None:
        values['user_id'] = scope.user_id
    # NOTE: no stored id holds NUL, and PostgreSQL refuses it as a
    # parameter: match nothing without sending it.
    if any('\x00' in value for value in values.values()):
        return None
    return values


class _Raw:
    """A DB-API error seen outside SQLAlchemy, shaped for ``_classify``."""

    connection_invalidated = False

    def __init__(self, error):
        self.orig = error

    def __str__(self):
        return str(self.orig)


def _record_of(kind, row):
    """A Record from a raw row of (id, project_id, user_id, version,
    created_at, doc)."""
    return base.Record(kind=kind, id=row[0], project_id=row[1],
                       user_id=row[2], version=row[3], created_at=row[4],
                       doc=json.loads(row[5]))


# The database holds job definitions and credentials references: only the
# service's user may read it. SQLite gives -wal and -shm files the mode of
# the database file.
_PRIVATE_FILE = 0o600
_SQLITE_COMPANIONS = ('', '-wal', '-shm', '-journal')


def _private_sqlite_files(path):
    """Create the SQLite file ``path`` 0600; make existing ones so."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                     _PRIVATE_FILE)
    except FileExistsError:
        pass
    except OSError as exc:
        # NOTE: SQLite reports what it cannot open, in its own words.
        LOG.debug('Cannot create %s: %s', path, exc)
    else:
        os.close(fd)
    for suffix in _SQLITE_COMPANIONS:
        name = path + suffix
        try:
            mode = os.stat(name).st_mode & 0o777
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
                LOG.warning('%s was readable by other users (mode %o); '
                            'it is now %o', name, mode, mode & 0o700)
        except FileNotFoundError:
            pass
        except OSError as exc:
            LOG.warning('Cannot restrict the permissions of %s: %s',
                        name, exc)


class _WriterQueue:
    """Writers to one SQLite file, in this process and the others, queue here.

    PERF: a thread lock orders the writers of this process; an ``flock`` on
    a lock file orders the processes. A waiting writer is woken as soon as
    the lock is free, instead of sleeping in SQLite's busy handler. The
    wait is bounded by ``sqlite_busy_timeout``, as SQLite's own is. Only
    writers take part: readers never wait (WAL).
    """

    _POLL_FIRST = 0.0002
    _POLL_MAX = 0.002
    # Write transactions of this process between two WAL checkpoints.
    CHECKPOINT_EVERY = 64

    def __init__(self, path, timeout):
        self._path = path
        self._timeout = timeout
        self._threads = threading.Lock()
        self._handle = None
        self._pid = None
        self._writes = 0

    def wrote(self):
        """Count a write; true when a checkpoint is due."""
        self._writes += 1
        if self._writes >= self.CHECKPOINT_EVERY:
            self._writes = 0
            return True
        return False

    def _file(self):
        # NOTE: an flock belongs to the open file description, which a
        # forked child shares: every process opens its own.
        pid = os.getpid()
        if self._handle is None or self._pid != pid:
            self.close()
            self._handle = os.fdopen(os.open(
                self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND,
                _PRIVATE_FILE), 'a+')
            self._pid = pid
            # NOTE: closed with the queue, also when nobody calls close().
            self._closer = weakref.finalize(self, self._handle.close)
        return self._handle

    def close(self):
        # NOTE: in a forked child this closes only the child's descriptor;
        # the parent keeps its own, and its lock.
        if self._handle is not None:
            self._closer()
            self._handle = None

    @contextlib.contextmanager
    def turn(self):
        deadline = time.monotonic() + self._timeout
        if not self._threads.acquire(timeout=self._timeout):
            raise errors.Unavailable(_UNAVAILABLE)
        try:
            try:
                handle = self._file()
            except OSError as exc:
                LOG.warning('Cannot open the SQLite writer lock %s: %s',
                            self._path, exc)
                yield
                return
            pause = self._POLL_FIRST
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        LOG.warning('SQLite database stayed locked for the '
                                    'whole busy timeout')
                        raise errors.Unavailable(_UNAVAILABLE) from None
                    time.sleep(pause)
                    pause = min(pause * 2, self._POLL_MAX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            self._threads.release()


class _Transaction(audit.TransactionAudit, base.Transaction):
    """One attempt of an ``atomic`` change, on one connection."""

    def __init__(self, driver, conn, lock_reads=False, reconnected=False):
        self._driver = driver
        self._conn = conn
        # A change is run again at most once for a dead connection.
        self._reconnected = reconnected
        # Read with SELECT ... FOR UPDATE (see SQLAlchemyDriver.attempt).
        self._lock_reads = lock_reads
        # pk of every document read or written here, so that conditional
        # writes name the very row that was read.
        self._pks = {}
        # (version, stored JSON text) of the same documents: an update
        # rewrites only the index rows that changed (see _update_terms).
        self._texts = {}

    @contextlib.contextmanager
    def _guard(self, what):
        if self.doomed is not None:
            raise self.doomed
        try:
            yield
        except sa_exc.DBAPIError as exc:
            kind = _classify(exc)
            if kind in (_RETRY, _DUPLICATE) and self._driver._optimistic:
                LOG.debug('Change lost a race while %s: %s', what, exc)
                self.doomed = base.LostRace()
            elif kind == _DISCONNECT and not self._reconnected:
                LOG.info('Database connection lost while %s; running the '
                         'change again on a new one: %s', what, exc)
                self.doomed = base.Reconnect()
            elif kind == _BUSY:
                LOG.warning('SQLite database stayed locked while %s', what)
                self.doomed = errors.Unavailable(_UNAVAILABLE)
            else:
                self.doomed = _unavailable(what, exc)
            raise self.doomed from None
        except sa_exc.SQLAlchemyError as exc:
            self.doomed = _unavailable(what, exc)
            raise self.doomed from None

    def get(self, kind, doc_id, scope):
        _check_kind(kind)
        values = _get_values(doc_id, scope)
        if values is None:
            return None
        prepared = self._driver._get_statement(kind, scope, in_change=True,
                                               lock=self._lock_reads)
        with self._guard('reading a document'):
            row = self._conn.exec_driver_sql(
                prepared.sql, prepared.parameters(values)).first()
        if row is None:
            return None
        pk, row = row[0], row[1:]
        key = _record_key(kind, row[1], row[0])
        self._pks[key] = pk
        self._texts[key] = (row[3], row[5])
        return _record_of(kind, row)

    def insert(self, kind, doc_id, project_id, user_id, created_at, doc):
        _check_kind(kind)
        text = _dumps(doc)
        with self._guard('inserting a document'):
            pk = self._driver._insert_document(
                self._conn, kind, doc_id, project_id, user_id, created_at,
                text)
            if pk is not None:
                self._driver._write_terms(self._conn, kind, pk, doc,
                                          replace=False)
        if pk is None:
            raise base.IdTaken(f'{kind} {doc_id!r} already exists')
        key = _record_key(kind, project_id, doc_id)
        self._pks[key] = pk
        self._texts[key] = (1, text)
        return base.Record(kind=kind, id=doc_id, project_id=project_id,
                           user_id=user_id, version=1, created_at=created_at,
                           doc=json.loads(text))

    def _target(self, record):
        """Return (pk or None, WHERE clauses) naming the row of ``record``."""
        table = models.documents[record.kind]
        pk = self._pks.get(
            _record_key(record.kind, record.project_id, record.id))
        if pk is not None:
            where = [table.c.pk == pk]
        else:
            where = _identity_filter(table, record.kind, record.project_id,
                                     record.id)
        return pk, where + [table.c.version == record.version]

    def update(self, record, doc):
        _check_kind(record.kind)
        table = models.documents[record.kind]
        text = _dumps(doc)
        key = _record_key(record.kind, record.project_id, record.id)
        pk = self._pks.get(key)
        stored = self._texts.get(key)
        # NOTE: the text read from the row, not record.doc, which the
        # caller may have changed in place.
        old_text = (stored[1] if stored is not None
                    and stored[0] == record.version else None)
        stmt = None if pk is not None else sa.update(table).where(
            *self._target(record)[1]).values(doc=text,
                                             version=record.version + 1)
        with self._guard('updating a document'):
            if pk is not None:
                # the row this change read: the common case, prepared
                matched = self._driver._update_document(
                    self._conn, record.kind, pk, record.version, text)
            elif self._driver._update_returning:
                pk = self._conn.execute(
                    stmt.returning(table.c.pk)  # type: ignore[union-attr]
                ).scalar()  # stmt is None only when pk was known
                matched = pk is not None
            else:
                matched = self._conn.execute(stmt).rowcount == 1
                if matched and pk is None:
                    pk = self._conn.execute(
                        sa.select(table.c.pk).where(*_identity_filter(
                            table, record.kind, record.project_id,
                            record.id))).scalar_one()
            if matched and old_text is not None:
                self._driver._update_terms(self._conn, record.kind, pk,
                                           json.loads(old_text), doc)
            elif matched:
                self._driver._write_terms(self._conn, record.kind, pk, doc,
                                          replace=True)
        if not matched:
            raise self.lost_race()
        self._pks[key] = pk
        self._texts[key] = (record.version + 1, text)
        return dataclasses.replace(record, version=record.version + 1,
                                   doc=json.loads(text))

    def delete(self, record):
        _check_kind(record.kind)
        table = models.documents[record.kind]
        _, where = self._target(record)
        with self._guard('deleting a document'):
            # NOTE: the index rows go with it (ON DELETE CASCADE).
            matched = self._conn.execute(
                sa.delete(table).where(*where)).rowcount == 1
        if not matched:
            raise self.lost_race()
        key = _record_key(record.kind, record.project_id, record.id)
        self._pks.pop(key, None)
        self._texts.pop(key, None)


class SQLAlchemyDriver(audit.DriverAudit, base.StorageDriver):
    """Documents in a SQL database reached through SQLAlchemy."""

    def __init__(self, conf):
        super().__init__(conf)
        db = conf.database
        self.max_attempts = db.max_retries
        self._query_timeout = db.query_timeout
        # NOTE: server limits count in milliseconds, where 0 is no limit.
        self._query_timeout_ms = (max(1, round(db.query_timeout * 1000))
                                  if db.query_timeout else 0)
        url = self._url(conf)
        self._url_obj = url
        self._backend = url.get_backend_name()
        self._sqlite = self._backend == 'sqlite'
        self._memory = self._sqlite and url.database in (None, '', ':memory:')
        # SQLite writers are serialized by BEGIN IMMEDIATE and cannot lose a
        # race; server databases run optimistically.
        self._optimistic = not self._sqlite
        # NOTE: one in-memory SQLite database is one connection; its users
        # must take turns.
        self._serial = threading.RLock() if self._memory else None
        self._writers = None
        if self._sqlite and not self._memory:
            _private_sqlite_files(os.path.abspath(url.database))
            self._writers = _WriterQueue(
                os.path.abspath(url.database) + '.writer',
                db.sqlite_busy_timeout / 1000.0)
        try:
            self._engine = self._create_engine(url, db)
        except (sa_exc.ArgumentError, ImportError) as exc:
            text = str(exc)
            if url.password:
                text = text.replace(str(url.password), '***')
            LOG.error('Cannot use [database] connection: %s', text)
            raise errors.Unavailable(
                'the [database] connection option is not usable') from None
        dialect = self._engine.dialect
        self._update_returning = bool(dialect.update_returning)
        self._read_engine = self._engine
        self._write_options = {}
        if self._sqlite:
            self._write_options = {'freezer_sqlite_begin': 'IMMEDIATE'}
        elif self._backend == 'postgresql':
            # NOTE: a lone SELECT needs no transaction: skip BEGIN/ROLLBACK.
            # Not on MySQL: there switching autocommit on and back costs
            # three statements per checkout (instead of one ROLLBACK), and
            # its failure on a dead connection escapes SQLAlchemy unwrapped,
            # before the connection can be invalidated and replaced.
            self._read_engine = self._engine.execution_options(
                isolation_level='AUTOCOMMIT')
        self._pid = os.getpid()
        self._statements = {}
        self._checkpoints = 0

    @property
    def embedded(self):
        """SQLite lives in a local file (or memory) and creates itself."""
        return self._sqlite

    # -- engine ------------------------------------------------------------

    @staticmethod
    def _url(conf):
        raw = conf.database.connection
        if not raw:
            state_path = conf.state_path
            try:
                # NOTE: only the service (and its group) may enter.
                os.makedirs(state_path, mode=0o750, exist_ok=True)
            except OSError as exc:
                LOG.error('Cannot create state_path %s: %s', state_path, exc)
            raw = 'sqlite:///' + os.path.join(state_path,
                                              'freezer-api.sqlite')
        try:
            url = sa.engine.make_url(raw)
        except sa_exc.ArgumentError:
            LOG.error('[database] connection is not a database URL')
            raise errors.Unavailable(
                'the [database] connection option is not usable') from None
        # NOTE: pick the DBAPI drivers this project depends on when the URL
        # names none and the usual default is not installed.
        if url.drivername == 'postgresql' and not _importable('psycopg2'):
            url = url.set(drivername='postgresql+psycopg')
        elif url.drivername in ('mysql', 'mariadb') and not _importable(
                'MySQLdb'):
            url = url.set(drivername=url.drivername + '+pymysql')
        if url.get_backend_name() in ('mysql', 'mariadb') and (
                'charset' not in url.query):
            url = url.update_query_dict({'charset': 'utf8mb4'})
        return url

    def _create_engine(self, url, db):
        kwargs = {'echo': db.connection_debug}
        if self._sqlite:
            kwargs['connect_args'] = {
                'check_same_thread': False,
                'timeout': db.sqlite_busy_timeout / 1000.0,
            }
            if self._memory:
                kwargs['poolclass'] = sa_pool.StaticPool
            else:
                kwargs.update(poolclass=sa_pool.QueuePool,
                              pool_size=db.max_pool_size,
                              max_overflow=db.max_overflow,
                              pool_timeout=db.pool_timeout)
        else:
            kwargs.update(pool_size=db.max_pool_size,
                          max_overflow=db.max_overflow,
                          pool_timeout=db.pool_timeout,
                          pool_recycle=3600,
                          isolation_level='READ COMMITTED')
            if self._backend == 'postgresql' and self._query_timeout_ms:
                kwargs['connect_args'] = {
                    'options': '-c statement_timeout='
                               f'{self._query_timeout_ms}'}
        engine = sa.create_engine(url, **kwargs)
        if self._sqlite:
            self._setup_sqlite(engine, db.sqlite_busy_timeout)
        elif self._backend in ('mysql', 'mariadb'):
            self._setup_mysql(engine)
        return engine

    def _setup_mysql(self, engine):
        limit_ms = self._query_timeout_ms

        @event.listens_for(engine, 'connect')
        def _on_connect(dbapi_conn, record):
            record.info['freezer_mariadb'] = _set_mysql_time_limit(
                dbapi_conn, limit_ms, None)
            # NOTE: the driver's transaction must not undo nor hold it.
            dbapi_conn.commit()

    def _setup_sqlite(self, engine, busy_timeout):
        memory = self._memory

        @event.listens_for(engine, 'connect')
        def _on_connect(dbapi_conn, record):
            # NOTE: stop pysqlite from issuing BEGIN on its own, so that
            # transactions start when and how _on_begin says.
            dbapi_conn.isolation_level = None
            deadline = record.info['freezer_deadline'] = _Deadline()
            dbapi_conn.set_progress_handler(deadline, _PROGRESS_STEPS)
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute(f'PRAGMA busy_timeout = {int(busy_timeout)}')
                cursor.execute('PRAGMA foreign_keys = ON')
                if not memory:
                    cursor.execute('PRAGMA journal_mode = WAL')
                    cursor.execute('PRAGMA synchronous = NORMAL')
                    # NOTE: checkpoints are run by _checkpoint, outside
                    # of the writers' turns.
                    cursor.execute('PRAGMA wal_autocheckpoint = 0')
            finally:
                cursor.close()

        @event.listens_for(engine, 'begin')
        def _on_begin(conn):
            mode = conn.get_execution_options().get('freezer_sqlite_begin')
            conn.exec_driver_sql('BEGIN IMMEDIATE' if mode == 'IMMEDIATE'
                                 else 'BEGIN')

    def _check_process(self):
        # NOTE: pooled connections must not cross a fork.
        pid = os.getpid()
        if pid != self._pid:
            self._engine.dispose(close=False)
            self._pid = pid

    @contextlib.contextmanager
    def _serialized(self):
        if self._serial is None:
            yield
        else:
            with self._serial:
                yield

    def _writer_turn(self):
        if self._writers is None:
            return contextlib.nullcontext()
        return self._writers.turn()

    def _read(self, what, work):
        """Return ``work(connection)``, for reads outside of any change.

        NOTE: pooled connections are not pinged before use (that would cost
        a round trip per request); a read that finds its connection dead is
        simply run once more on a new one.
        """
        self._check_process()
        for attempt in (1, 2):
            try:
                with self._serialized(), \
                        self._read_engine.connect() as conn, \
                        self._time_limit(conn.info):
                    return work(conn)
            except sa_exc.DBAPIError as exc:
                kind = _classify(exc)
                if kind == _DISCONNECT and attempt == 1:
                    LOG.info('Database connection lost while %s; trying '
                             'a new one: %s', what, exc)
                    continue
                if kind == _BUSY:
                    LOG.warning('SQLite database stayed locked while %s',
                                what)
                    raise errors.Unavailable(_UNAVAILABLE) from None
                raise _unavailable(what, exc) from None
            except sa_exc.SQLAlchemyError as exc:
                raise _unavailable(what, exc) from None

    @contextlib.contextmanager
    def _time_limit(self, info):
        """Stop a SQLite read at ``query_timeout`` (server databases
        limit every statement of their sessions themselves)."""
        deadline = info.get('freezer_deadline') if self._sqlite else None
        if deadline is None or not self._query_timeout:
            yield
            return
        deadline.at = time.monotonic() + self._query_timeout
        try:
            yield
        finally:
            deadline.at = None

    # -- statements --------------------------------------------------------

    def _insert_document(self, conn, kind, doc_id, project_id, user_id,
                         created_at, text):
        """Insert a row; return its pk, or None when the id is taken."""
        table = models.documents[kind]
        values = {'id': doc_id, 'project_id': project_id,
                  'user_id': user_id, 'version': 1,
                  'created_at': created_at, 'doc': text}
        postgresql = self._backend == 'postgresql'

        def build():
            columns: dict = {name: sa.bindparam(name) for name in values}
            if postgresql:
                # NOTE: a failed INSERT would abort the whole PostgreSQL
                # transaction; ON CONFLICT keeps it usable.
                return (pg_dialect.insert(table).values(columns)
                        .on_conflict_do_nothing().returning(table.c.pk))
            return sa.insert(table).values(columns)

        prepared = self._prepared(('insert', kind), build)
        params = prepared.parameters(values)
        if postgresql:
            return conn.exec_driver_sql(prepared.sql, params).scalar()
        try:
            result = conn.exec_driver_sql(prepared.sql, params)
        except sa_exc.IntegrityError as exc:
            # SQLite and MySQL undo only the failed statement.
            if _classify(exc) == _DUPLICATE:
                return None
            raise
        return result.lastrowid

    def _update_document(self, conn, kind, pk, version, text):
        """Rewrite row ``pk`` if it is still at ``version``; tell whether
        it was."""
        table = models.documents[kind]
        prepared = self._prepared(('update', kind), lambda: sa.update(
            table).where(table.c.pk == sa.bindparam('w_pk'),
                         table.c.version == sa.bindparam('w_version'))
            .values(doc=sa.bindparam('new_doc'),
                    version=sa.bindparam('new_version')))
        return conn.exec_driver_sql(prepared.sql, prepared.parameters({
            'w_pk': pk, 'w_version': version, 'new_doc': text,
            'new_version': version + 1})).rowcount == 1

    def _write_terms(self, conn, kind, pk, doc, replace):
        table = models.terms[kind]
        if replace:
            conn.execute(sa.delete(table).where(table.c.doc_pk == pk))
        self._insert_terms(conn, kind, models.term_rows(pk, doc))

    def _insert_terms(self, conn, kind, rows):
        """Insert index rows (dicts of ``models.term_rows``).

        PERF: one executemany of prepared SQL; through a Core insert,
        SQLAlchemy processes the parameters of every row on its own.
        """
        if not rows:
            return
        table = models.terms[kind]
        names = tuple(rows[0])
        prepared = self._prepared(
            ('terms', kind, names), lambda: sa.insert(table).values(
                {name: sa.bindparam(name) for name in names}))
        conn.exec_driver_sql(prepared.sql,
                             [prepared.parameters(row) for row in rows])

    def _update_terms(self, conn, kind, pk, old_doc, doc):
        """Turn the index rows of ``old_doc`` into those of ``doc``.

        PERF: a PATCH or a session action changes a few leaves of a
        document; deleting and inserting only those rows spares the index
        maintenance of all the others.
        """
        table = models.terms[kind]

        def by_term(rows):
            return {(r['path'], r['key'], r['value']): r for r in rows}

        old = by_term(models.term_rows(pk, old_doc))
        new = by_term(models.term_rows(pk, doc))
        gone = [{'t_path': path, 't_key': key, 't_value': value}
                for (path, key, value) in old if (path, key, value) not in new]
        added = [row for term, row in new.items() if term not in old]
        if gone:
            prepared = self._prepared(('terms-gone', kind), lambda: sa.delete(
                table).where(table.c.doc_pk == sa.bindparam('t_pk'),
                             table.c.path == sa.bindparam('t_path'),
                             table.c.key == sa.bindparam('t_key'),
                             table.c.value == sa.bindparam('t_value')))
            conn.exec_driver_sql(prepared.sql, [
                prepared.parameters(dict(row, t_pk=pk)) for row in gone])
        self._insert_terms(conn, kind, added)

    def _prepared(self, key, build):
        """The compiled form of the statement ``build()`` makes for
        ``key``, a shape of statement (see ``_Prepared``)."""
        prepared = self._statements.get(key)
        if prepared is None:
            if len(self._statements) >= _MAX_PREPARED:
                # NOTE: shapes of searches are many but few are common:
                # start over rather than grow without bound.
                self._statements.clear()
            prepared = _Prepared(build(), self._engine.dialect)
            self._statements[key] = prepared
        return prepared

    def _get_statement(self, kind, scope, in_change=False, lock=False):
        """Select one document; in a change, its pk first, and locked
        (``FOR UPDATE``) when ``lock``."""
        def build():
            table = models.documents[kind]
            columns = _record_columns(table)
            if in_change:
                columns = (table.c.pk,) + columns
            stmt = sa.select(*columns).where(
                table.c.id == sa.bindparam('doc_id'))
            if scope.project_id is not None:
                stmt = stmt.where(
                    table.c.project_id == sa.bindparam('project_id'))
            if scope.user_id is not None:
                stmt = stmt.where(table.c.user_id == sa.bindparam('user_id'))
            if kind in base.PROJECT_UNIQUE_KINDS and scope.project_id is None:
                # Several projects may use this id: take the oldest.
                stmt = stmt.order_by(table.c.created_at, table.c.pk).limit(1)
            if lock:
                stmt = stmt.with_for_update()
            return stmt

        return self._prepared(('get', kind, scope.project_id is not None,
                               scope.user_id is not None, in_change, lock),
                              build)

    def _list_statement(self, kind, scope, query):
        """Return the prepared list statement and its parameter values.

        Every value of the search is a parameter: one compiled statement
        serves every search of the same shape.
        """
        values: dict = {'lim': None, 'off': None}
        shape = ['list', kind, scope.project_id is not None,
                 scope.user_id is not None]
        if scope.project_id is not None:
            values['project_id'] = scope.project_id
        if scope.user_id is not None:
            values['user_id'] = scope.user_id
        for prefix, terms in (('m', query.match), ('n', query.match_not)):
            term_shapes = []
            for i, term in enumerate(terms):
                values[f'{prefix}{i}f'] = models.index_form(term.field)
                values[f'{prefix}{i}v'] = models.value_form(term.value)
                keys = _path_keys(term.field) if term.is_path else ()
                for j, key in enumerate(keys):
                    values[f'{prefix}{i}k{j}'] = models.index_form(key)
                term_shapes.append((term.is_path, len(keys)))
            shape.append(tuple(term_shapes))
        for i, needle in enumerate(query.text):
            # stored text holds NUL as U+FFFD (see models.text_form)
            needle = needle.lower().replace('\x00', '\ufffd')
            if needle:
                values[f't{i}'] = '%' + _like_escape(needle) + '%'
        shape.append(tuple(bool(needle) for needle in query.text))
        for i, rng in enumerate(query.ranges):
            values[f'r{i}p'] = models.index_form(rng.path)
            if rng.low is not None:
                values[f'r{i}lo'] = float(rng.low)
            if rng.high is not None:
                values[f'r{i}hi'] = float(rng.high)
        shape.append(tuple((rng.low is not None, rng.high is not None)
                           for rng in query.ranges))
        key = tuple(shape)
        return self._prepared(
            key, lambda: self._build_list(kind, scope, key)), values

    def _build_list(self, kind, scope, key):
        """The list statement of one shape (see ``_list_statement``)."""
        _, _, has_project, has_user, match, match_not, text, ranges = key
        docs = models.documents[kind]
        idx = models.terms[kind]
        conds = []
        if has_project:
            conds.append(docs.c.project_id == sa.bindparam('project_id'))
        if has_user:
            conds.append(docs.c.user_id == sa.bindparam('user_id'))

        def term_cond(prefix, term_shape):
            is_path, keys = term_shape
            value = idx.c.value == sa.bindparam(prefix + 'v')
            if not is_path:
                return [idx.c.key == sa.bindparam(prefix + 'f'), value]
            # PERF: through the (key, value) index; the path is checked
            # on the rows it finds (see models: there is no path index).
            return [idx.c.key.in_([sa.bindparam(f'{prefix}k{j}')
                                   for j in range(keys)]),
                    value, idx.c.path == sa.bindparam(prefix + 'f')]

        for i, term_shape in enumerate(match):
            conds.append(docs.c.pk.in_(sa.select(idx.c.doc_pk).where(
                *term_cond(f'm{i}', term_shape))))
        for i, term_shape in enumerate(match_not):
            conds.append(~sa.exists().where(
                idx.c.doc_pk == docs.c.pk, *term_cond(f'n{i}', term_shape)))
        for i, has_needle in enumerate(text):
            where = [idx.c.doc_pk == docs.c.pk]
            if has_needle:
                where.append(idx.c.text.like(sa.bindparam(f't{i}'),
                                             escape=_LIKE_ESCAPE))
            conds.append(sa.exists().where(*where))
        for i, (low, high) in enumerate(ranges):
            where = [idx.c.path == sa.bindparam(f'r{i}p'),
                     idx.c.num.is_not(None)]
            if low:
                where.append(idx.c.num >= sa.bindparam(f'r{i}lo'))
            if high:
                where.append(idx.c.num <= sa.bindparam(f'r{i}hi'))
            conds.append(docs.c.pk.in_(sa.select(idx.c.doc_pk).where(*where)))
        return (sa.select(*_record_columns(docs)).where(*conds)
                .order_by(*self._order(kind, any_project=not has_project))
                .limit(sa.bindparam('lim', type_=sa.BigInteger()))
                .offset(sa.bindparam('off', type_=sa.BigInteger())))

    def _fetch(self, what, prepared, values):
        """Every row of a prepared read, outside of any change."""
        params = prepared.parameters(values)
        if not self._sqlite:
            return self._read(what, lambda conn: conn.exec_driver_sql(
                prepared.sql, params).all())
        # PERF: SQLite reads skip even the Connection: the pooled sqlite3
        # connection runs the SQL (and caches its compiled form).
        self._check_process()
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        with self._serialized():
            try:
                pooled = self._engine.raw_connection()
            except (sa_exc.SQLAlchemyError, dbapi_error) as exc:
                # NOTE: a raw checkout lets the DB-API's own error through
                raise _unavailable(what, exc) from None
            try:
                with self._time_limit(pooled.info):
                    return pooled.driver_connection.execute(
                        prepared.sql, params).fetchall()
            except dbapi_error as exc:
                kind = _classify(_Raw(exc))
                if kind == _BUSY:
                    LOG.warning('SQLite database stayed locked while %s',
                                what)
                    raise errors.Unavailable(_UNAVAILABLE) from None
                raise _unavailable(what, _Raw(exc)) from None
            finally:
                pooled.close()

    @staticmethod
    def _order(kind, any_project):
        table = models.documents[kind]
        order = [table.c.created_at, table.c.id]
        if kind in base.PROJECT_UNIQUE_KINDS and any_project:
            # NOTE: ids repeat across projects; without this tie-break the
            # order, hence paging, would not be stable.
            order.append(table.c.pk)
        return order

    # -- documents ---------------------------------------------------------

    def get(self, kind, doc_id, scope):
        _check_kind(kind)
        values = _get_values(doc_id, scope)
        rows = [] if values is None else self._fetch(
            'reading a document', self._get_statement(kind, scope), values)
        if not rows:
            raise errors.NotFound(f'{kind} {doc_id!r} not found')
        return _record_of(kind, rows[0])

    def list(self, kind, scope, query, limit, offset):
        _check_kind(kind)
        limit = max(0, min(int(limit), base.MAX_LIST_LIMIT))
        offset = max(0, int(offset))
        if limit == 0 or offset > _MAX_OFFSET:
            # NOTE: no table holds 2**63 rows, and SQL engines reject
            # larger numbers.
            return []
        prepared, values = self._list_statement(kind, scope, query)
        values.update(lim=limit, off=offset)
        rows = self._fetch('listing documents', prepared, values)
        # PERF: each row's JSON text is let go of once it is parsed: a
        # page of large documents is not held as text and objects at once.
        rows.reverse()
        records = []
        while rows:
            records.append(_record_of(kind, rows.pop()))
        return records

    @property
    def races_on_insert(self):
        return self._optimistic

    def attempt(self, change, attempt):
        # NOTE: the first attempt is optimistic. One that lost a race is
        # under contention: its re-runs lock what they read, so that they
        # queue behind the current writer instead of losing again and again.
        lock_reads = attempt.contended and self._optimistic
        self._check_process()
        try:
            return self._attempt_in_turn(change, lock_reads,
                                         attempt.reconnected)
        finally:
            if self._writers is not None and self._writers.wrote():
                self._checkpoint()

    def _checkpoint(self):
        """Copy the WAL back into the database file.

        PERF: SQLite's automatic checkpoint runs inside the commit that
        fills the WAL, while that writer holds the file: every writer
        waited for its page copies and fsyncs. Here it runs after the
        writer's turn, and a passive checkpoint never blocks writers.
        """
        try:
            raw = self._engine.raw_connection()
        except sa_exc.SQLAlchemyError as exc:
            LOG.debug('No connection for a WAL checkpoint: %s', exc)
            return
        try:
            # NOTE: outside any transaction (isolation_level is None).
            raw.driver_connection.execute('PRAGMA wal_checkpoint(PASSIVE)')
            self._checkpoints += 1
            if self._checkpoints % ANALYZE_EVERY == 1:
                self._analyze(raw.driver_connection)
        except Exception as exc:  # sqlite3.Error, whatever the module
            LOG.debug('WAL checkpoint failed: %s', exc)
        finally:
            raw.close()

    def _analyze(self, sqlite_conn):
        """Refresh SQLite's statistics of the tables and indexes.

        PERF: without them SQLite's planner cannot tell a client's ten jobs
        from the million of its project: it walks the project in list
        order to find them (130 ms at 200 000 jobs instead of 3 ms).
        PostgreSQL and MySQL keep their statistics themselves; SQLite only
        on ANALYZE. Sampling (``analysis_limit``) bounds its cost whatever
        the size. Run in the writers' turn, as it writes ``sqlite_stat1``.
        """
        with self._writer_turn():
            sqlite_conn.execute(f'PRAGMA analysis_limit = {ANALYZE_ROWS}')
            sqlite_conn.execute('ANALYZE')

    def _attempt_in_turn(self, change, lock_reads, reconnected):
        with self._serialized(), self._writer_turn():
            try:
                conn = self._engine.connect()
            except sa_exc.DBAPIError as exc:
                raise _unavailable('connecting', exc) from None
            except sa_exc.SQLAlchemyError as exc:
                raise _unavailable('connecting', exc) from None
            try:
                return self._run(conn, change, lock_reads, reconnected)
            finally:
                try:
                    conn.close()
                except sa_exc.SQLAlchemyError as exc:
                    LOG.warning('Error while releasing a connection: %s', exc)

    def _run(self, conn, change, lock_reads, reconnected):
        if self._write_options:
            conn = conn.execution_options(**self._write_options)
        try:
            conn.begin()
        except sa_exc.DBAPIError as exc:
            kind = _classify(exc)
            if kind == _BUSY:
                LOG.warning('SQLite database stayed locked for the whole '
                            'busy timeout')
                raise errors.Unavailable(_UNAVAILABLE) from None
            if kind == _DISCONNECT and not reconnected:
                raise base.Reconnect() from None
            raise _unavailable('starting a transaction', exc) from None
        txn = _Transaction(self, conn, lock_reads, reconnected)
        result = txn.run(change, lambda: self._rollback(conn))
        try:
            conn.commit()
        except sa_exc.DBAPIError as exc:
            self._rollback(conn)
            kind = _classify(exc)
            if kind in (_RETRY, _DUPLICATE) and self._optimistic:
                raise base.LostRace() from None
            raise _unavailable('committing', exc) from None
        except sa_exc.SQLAlchemyError as exc:
            self._rollback(conn)
            raise _unavailable('committing', exc) from None
        return result

    @staticmethod
    def _rollback(conn):
        try:
            conn.rollback()
        except sa_exc.SQLAlchemyError as exc:
            LOG.warning('Error while rolling back: %s', exc)

    # -- service -----------------------------------------------------------

    def ping(self):
        self._read('checking the database',
                   lambda conn: conn.exec_driver_sql('SELECT 1').scalar())

    @contextlib.contextmanager
    def _schema_lock(self):
        """Keep two processes from migrating one SQLite file at once."""
        if not self._sqlite or self._memory:
            yield
            return
        path = os.path.abspath(self._url_obj.database) + '.lock'
        try:
            handle = open(path, 'a+')
        except OSError as exc:
            LOG.warning('Cannot open schema lock %s: %s', path, exc)
            raise errors.Unavailable(_UNAVAILABLE) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _schema_connection(self, what):
        """A connection in a write transaction, holding the schema lock."""
        self._check_process()
        with self._serialized(), self._schema_lock():
            try:
                with self._engine.connect() as conn:
                    if self._write_options:
                        conn = conn.execution_options(**self._write_options)
                    locked = False
                    limited = self._lift_time_limit(conn)
                    try:
                        with conn.begin():
                            if self._backend == 'postgresql':
                                # NOTE: migrations may take long: no limit
                                # until the end of this transaction.
                                conn.exec_driver_sql(
                                    'SET LOCAL statement_timeout = 0')
                                conn.execute(sa.text(
                                    'SELECT pg_advisory_xact_lock(:k)'),
                                    {'k': _PG_SCHEMA_LOCK})
                            elif self._backend in ('mysql', 'mariadb'):
                                locked = conn.execute(
                                    sa.text('SELECT GET_LOCK(:n, 600)'),
                                    {'n': _MYSQL_SCHEMA_LOCK}).scalar() == 1
                                if not locked:
                                    LOG.warning('Timed out waiting for the '
                                                'schema lock while %s', what)
                                    raise errors.Unavailable(_UNAVAILABLE)
                            yield conn
                    finally:
                        # NOTE: a MySQL lock is not released by the end of
                        # the transaction: release it only after the commit,
                        # or the next holder would not see what was written
                        # (such as alembic's version row).
                        if locked:
                            self._release_schema_lock(conn)
                        if limited:
                            self._restore_time_limit(conn)
            except sa_exc.SQLAlchemyError as exc:
                raise _unavailable(what, exc) from None

    def _lift_time_limit(self, conn):
        """No MySQL/MariaDB statement limit on this session; True when
        one was lifted (see _restore_time_limit)."""
        if self._backend not in ('mysql', 'mariadb') or not (
                self._query_timeout_ms):
            return False
        conn.exec_driver_sql(_mysql_time_limit_sql(
            0, conn.info.get('freezer_mariadb')))
        conn.commit()
        return True

    def _restore_time_limit(self, conn):
        try:
            conn.exec_driver_sql(_mysql_time_limit_sql(
                self._query_timeout_ms, conn.info.get('freezer_mariadb')))
            conn.commit()
        except sa_exc.SQLAlchemyError as exc:
            # NOTE: a connection that cannot be limited is not reused.
            LOG.warning('Cannot restore the statement time limit: %s', exc)
            conn.invalidate()

    @staticmethod
    def _release_schema_lock(conn):
        try:
            conn.execute(sa.text('SELECT RELEASE_LOCK(:n)'),
                         {'n': _MYSQL_SCHEMA_LOCK})
            conn.commit()
        except sa_exc.SQLAlchemyError as exc:
            # A lost connection has lost its locks with it.
            LOG.warning('Error while releasing the schema lock: %s', exc)

    def upgrade_schema(self, kinds=None):  # tables migrate as one
        from alembic import command
        from alembic import config as alembic_config

        cfg = alembic_config.Config()
        cfg.set_main_option('script_location', MIGRATIONS_DIR)
        with self._schema_connection('upgrading the schema') as conn:
            cfg.attributes['connection'] = conn
            command.upgrade(cfg, 'head')
            if self._sqlite:
                # statistics for the planner from the start (see _analyze)
                conn.exec_driver_sql(f'PRAGMA analysis_limit = {ANALYZE_ROWS}')
                conn.exec_driver_sql('ANALYZE')

    def drop_schema(self):
        version = sa.Table(VERSION_TABLE, sa.MetaData(),
                           sa.Column('version_num', sa.String(32)))
        with self._schema_connection('dropping the schema') as conn:
            models.metadata.drop_all(conn, checkfirst=True)
            version.drop(conn, checkfirst=True)

    def describe_schema(self, kinds=None):  # tables describe as one
        ours = set(models.metadata.tables)

        def describe(conn):
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
            return {'backend': self._backend, 'tables': tables,
                    'revision': revision}

        return self._read('describing the schema', describe)

    def close(self):
        self._engine.dispose()
        if self._writers is not None:
            self._writers.close()


@functools.lru_cache(maxsize=None)
def _importable(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True
