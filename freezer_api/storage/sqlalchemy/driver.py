"""Storage driver on SQLAlchemy: SQLite (embedded), PostgreSQL, MySQL.

Documents are JSON text in one table per kind; searches run on the inverted
index ``<kind>_terms`` (see ``models``), never by loading documents.

The driver reads and writes; its helpers each keep one concern:
``engines`` (URL and engine per dialect), ``statements`` (the compiled
SQL of reads, writes and searches), ``failures`` (what a database error
means), ``sqlite`` (WAL, the writers' queue, checkpoints, statistics) and
``schema`` (migrations).

Concurrency
    On SQLite every ``atomic`` change starts with ``BEGIN IMMEDIATE``, in
    its turn in the writers' queue (``sqlite.WriterQueue``), so writers,
    even in different processes, take turns on the file (waiting up to
    ``[database] sqlite_busy_timeout``) and never lose a race. Server
    databases use optimistic concurrency instead: updates and deletes are
    conditional on the version that was read, and a change that lost a race
    (or hit a deadlock or serialization failure) is rolled back and run
    again by ``StorageDriver.run_atomic``, up to ``[database] max_retries``
    times. The re-runs read with ``SELECT ... FOR UPDATE``: under
    contention they wait for the row instead of losing the race again.
"""

import contextlib
import dataclasses
import json
import logging
import os
import threading

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from freezer_api.storage import base
from freezer_api.storage import codec
from freezer_api.storage import errors
from freezer_api.storage.sqlalchemy import audit
from freezer_api.storage.sqlalchemy import cursors
from freezer_api.storage.sqlalchemy import engines
from freezer_api.storage.sqlalchemy import failures
from freezer_api.storage.sqlalchemy import models
from freezer_api.storage.sqlalchemy import schema
from freezer_api.storage.sqlalchemy import sqlite
from freezer_api.storage.sqlalchemy import statements

__all__ = ['SQLAlchemyDriver']

LOG = logging.getLogger(__name__)

# No table holds 2**63 rows, and SQL engines reject larger numbers.
_MAX_OFFSET = 2 ** 63 - 1


def _dumps(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(',', ':'))


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


def _record_of(kind, row):
    """A Record from a raw row of ``statements.record_columns``."""
    return base.Record.made(kind, row[0], row[1], row[2], row[3], row[4],
                            codec.loads(row[5]))


@dataclasses.dataclass
class _PreparedDocument:
    """A document about to be inserted, encoded ahead (``preparing``)."""

    doc: dict
    text: str
    rows: list


class _Transaction(audit.TransactionAudit, base.Transaction):
    """One attempt of an ``atomic`` change, on one connection."""

    def __init__(self, driver, conn, lock_reads=False, reconnected=False):
        self._driver = driver
        self._statements = driver._statements
        self._conn = conn
        # A change is run again at most once for a dead connection.
        self._reconnected = reconnected
        # Read with SELECT ... FOR UPDATE (see SQLAlchemyDriver.attempt).
        self._lock_reads = lock_reads
        # pk of every document read or written here, so that conditional
        # writes name the very row that was read.
        self._pks = {}
        # (version, stored JSON text) of the same documents: an update
        # rewrites only the index rows that changed (see
        # Statements.update_terms).
        self._texts = {}

    @contextlib.contextmanager
    def _guard(self, what):
        if self.doomed is not None:
            raise self.doomed
        try:
            yield
        except sa_exc.SQLAlchemyError as exc:
            self.doomed = failures.translate(
                what, exc, optimistic=self._driver.races_on_insert,
                may_reconnect=not self._reconnected)
            raise self.doomed from None

    def get(self, kind, doc_id, scope):
        _check_kind(kind)
        values = statements.get_values(doc_id, scope)
        if values is None:
            return None
        prepared = self._statements.get(kind, scope, in_change=True,
                                        lock=self._lock_reads)
        with self._guard('reading a document'):
            row = self._statements.run(
                self._conn, prepared.sql,
                prepared.parameters(values)).fetchone()
        if row is None:
            return None
        pk, row = row[0], row[1:]
        key = _record_key(kind, row[1], row[0])
        self._pks[key] = pk
        self._texts[key] = (row[3], row[5])
        return _record_of(kind, row)

    def insert(self, kind, doc_id, project_id, user_id, created_at, doc):
        _check_kind(kind)
        prepared = getattr(self._driver._prepared, 'doc', None)
        if prepared is not None and prepared.doc is doc:
            text, rows = prepared.text, prepared.rows
        else:
            text, rows = _dumps(doc), None
        with self._guard('inserting a document'):
            pk = self._driver._insert_document(
                self._conn, kind, doc_id, project_id, user_id, created_at,
                text)
            if pk is not None:
                self._statements.write_terms(self._conn, kind, pk, doc,
                                             replace=False, rows=rows)
        if pk is None:
            raise base.IdTaken(f'{kind} {doc_id!r} already exists')
        key = _record_key(kind, project_id, doc_id)
        self._pks[key] = pk
        self._texts[key] = (1, text)
        return base.Record(kind=kind, id=doc_id, project_id=project_id,
                           user_id=user_id, version=1, created_at=created_at,
                           doc=codec.loads(text))

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
                prepared = self._statements.update(record.kind)
                matched = self._statements.run(
                    self._conn, prepared.sql, prepared.parameters({
                        'w_pk': pk, 'w_version': record.version,
                        'new_doc': text,
                        'new_version': record.version + 1})).rowcount == 1
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
                self._statements.update_terms(self._conn, record.kind, pk,
                                              old_text, doc, text)
            elif matched:
                self._statements.write_terms(self._conn, record.kind, pk,
                                             doc, replace=True)
        if not matched:
            raise self.lost_race()
        self._pks[key] = pk
        self._texts[key] = (record.version + 1, text)
        return dataclasses.replace(record, version=record.version + 1,
                                   doc=codec.loads(text))

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


class SQLAlchemyDriver(audit.DriverAudit, cursors.DriverCursors,
                       base.StorageDriver):
    """Documents in a SQL database reached through SQLAlchemy."""

    def __init__(self, conf):
        super().__init__(conf)
        db = conf.database
        self.max_attempts = db.max_retries
        self._query_timeout = db.query_timeout
        # NOTE: server limits count in milliseconds, where 0 is no limit.
        self._query_timeout_ms = (max(1, round(db.query_timeout * 1000))
                                  if db.query_timeout else 0)
        url = engines.url(conf)
        self._backend = url.get_backend_name()
        self._sqlite = self._backend == 'sqlite'
        memory = engines.is_memory(url)
        # NOTE: one in-memory SQLite database is one connection; its users
        # must take turns.
        self._serial = threading.RLock() if memory else None
        if self._sqlite and not memory:
            sqlite.private_files(os.path.abspath(url.database))
        self._engine = engines.create(url, db, self._query_timeout_ms)
        self._writers = None
        # the changes' connections: the same pool but on a SQLite file
        self._write_engine = self._engine
        if self._sqlite and not memory:
            self._writers = sqlite.WriterQueue(
                os.path.abspath(url.database) + '.writer',
                db.sqlite_busy_timeout / 1000.0, self._engine.raw_connection)
            # PERF: SQLite drops a connection's page cache when another
            # connection wrote since it last read, and the pooled
            # connections took turns at writing: each change read its
            # B-tree paths again. Writers take turns anyway, so one
            # connection of their own serves them (the index rows of a
            # backup: 240 -> 190 us of CPU with 2 x 2 uwsgi workers).
            self._write_engine = engines.create(
                url, db, self._query_timeout_ms, pool_size=1)
        # every engine of this driver, disposed together
        self._engines = ((self._engine,) if self._write_engine is self._engine
                         else (self._engine, self._write_engine))
        self._update_returning = bool(self._engine.dialect.update_returning)
        self._statements = statements.Statements(self._engine.dialect)
        self._read_engine = self._engine
        self._write_options = {}
        if self._sqlite:
            self._write_options = sqlite.WRITE_OPTIONS
        elif self._backend == 'postgresql':
            # NOTE: a lone SELECT needs no transaction: skip BEGIN/ROLLBACK.
            # Not on MySQL: there switching autocommit on and back costs
            # three statements per checkout (instead of one ROLLBACK), and
            # its failure on a dead connection escapes SQLAlchemy unwrapped,
            # before the connection can be invalidated and replaced.
            self._read_engine = self._engine.execution_options(
                isolation_level='AUTOCOMMIT')
        self._pid = os.getpid()
        # the audit chains' heads this process last wrote (audit.py)
        self._audit_heads = {}
        # the document this thread is about to insert (preparing)
        self._prepared = threading.local()

    @contextlib.contextmanager
    def preparing(self, doc):
        # PERF: the JSON and index rows of a new document made before the
        # write transaction: SQLite writers take turns, and this work
        # (about a quarter of a create's turn) no longer makes others wait.
        local = self._prepared
        previous = getattr(local, 'doc', None)
        local.doc = _PreparedDocument(doc, _dumps(doc),
                                      models.term_rows(None, doc))
        try:
            yield
        finally:
            local.doc = previous

    @property
    def embedded(self):
        """SQLite lives in a local file (or memory) and creates itself."""
        return self._sqlite

    @property
    def races_on_insert(self):
        # SQLite writers take turns (BEGIN IMMEDIATE) and never race;
        # server databases run optimistically.
        return not self._sqlite

    # -- connections -------------------------------------------------------

    def _check_process(self):
        # NOTE: pooled connections must not cross a fork.
        pid = os.getpid()
        if pid != self._pid:
            for engine in self._engines:
                engine.dispose(close=False)
            self._pid = pid

    def _serialized(self):
        return (self._serial if self._serial is not None
                else contextlib.nullcontext())

    def _writer_turn(self):
        if self._writers is None:
            return contextlib.nullcontext()
        return self._writers.turn()

    def _time_limit(self, info):
        """Stop a SQLite read at ``query_timeout`` (server databases
        limit every statement of their sessions themselves)."""
        if not self._sqlite:
            return contextlib.nullcontext()
        return sqlite.time_limit(info, self._query_timeout)

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
            except sa_exc.SQLAlchemyError as exc:
                error = failures.translate(what, exc,
                                           may_reconnect=attempt == 1)
                if not isinstance(error, base.Reconnect):
                    raise error from None
        raise AssertionError('unreachable')  # pragma: no cover

    def _fetch(self, what, prepared, values):
        """Every row of a prepared read, outside of any change."""
        params = prepared.parameters(values)
        if not self._sqlite:
            return self._read(what, lambda conn: conn.exec_driver_sql(
                prepared.sql, params).all())
        # PERF: SQLite reads skip even the Connection: the pooled sqlite3
        # connection runs the SQL (and caches its compiled form). Through
        # the Connection a GET cost about 1.5x the server CPU (bench).
        self._check_process()
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        with self._serialized():
            try:
                pooled = self._engine.raw_connection()
            except (sa_exc.SQLAlchemyError, dbapi_error) as exc:
                # NOTE: a raw checkout lets the DB-API's own error through
                raise failures.unavailable(what, exc) from None
            try:
                with self._time_limit(pooled.info):
                    return pooled.driver_connection.execute(
                        prepared.sql, params).fetchall()
            except dbapi_error as exc:
                raise failures.unavailable(what, exc) from None
            finally:
                pooled.close()

    # -- writes ------------------------------------------------------------

    def _insert_document(self, conn, kind, doc_id, project_id, user_id,
                         created_at, text):
        """Insert a row; return its pk, or None when the id is taken."""
        prepared = self._statements.insert(kind)
        params = prepared.parameters({
            'id': doc_id, 'project_id': project_id, 'user_id': user_id,
            'version': 1, 'created_at': created_at, 'doc': text})
        if self._backend == 'postgresql':
            return conn.exec_driver_sql(prepared.sql, params).scalar()
        try:
            result = self._statements.run(conn, prepared.sql, params)
        except sa_exc.IntegrityError as exc:
            # SQLite and MySQL undo only the failed statement.
            if failures.classify(exc) == failures.DUPLICATE:
                return None
            raise
        return result.lastrowid

    # -- documents ---------------------------------------------------------

    def get(self, kind, doc_id, scope):
        _check_kind(kind)
        values = statements.get_values(doc_id, scope)
        rows = [] if values is None else self._fetch(
            'reading a document', self._statements.get(kind, scope), values)
        if not rows:
            raise errors.NotFound(f'{kind} {doc_id!r} not found')
        return _record_of(kind, rows[0])

    def list(self, kind, scope, query, limit, offset):
        _check_kind(kind)
        limit = max(0, min(int(limit), base.MAX_LIST_LIMIT))
        offset = max(0, int(offset))
        if limit == 0 or offset > _MAX_OFFSET:
            return []
        prepared, values = self._statements.list(kind, scope, query)
        values.update(lim=limit, off=offset)
        rows = self._fetch('listing documents', prepared, values)
        # PERF: each row's JSON text is let go of once it is parsed: a
        # page of large documents is not held as text and objects at once.
        rows.reverse()
        records = []
        while rows:
            records.append(_record_of(kind, rows.pop()))
        return records

    def attempt(self, change, attempt):
        # NOTE: the first attempt is optimistic. One that lost a race is
        # under contention: its re-runs lock what they read, so that they
        # queue behind the current writer instead of losing again and again.
        lock_reads = attempt.contended and self.races_on_insert
        self._check_process()
        try:
            with self._serialized(), self._writer_turn():
                return self._run(change, lock_reads, attempt.reconnected)
        finally:
            if self._writers is not None:
                # NOTE: after the turn: a checkpoint keeps no writer waiting
                self._writers.wrote()

    def _run(self, change, lock_reads, reconnected):
        try:
            conn = self._write_engine.connect()
        except sa_exc.SQLAlchemyError as exc:
            raise failures.unavailable('connecting', exc) from None
        try:
            if self._write_options:
                conn = conn.execution_options(**self._write_options)
            try:
                conn.begin()
            except sa_exc.SQLAlchemyError as exc:
                raise failures.translate(
                    'starting a transaction', exc,
                    may_reconnect=not reconnected) from None
            txn = _Transaction(self, conn, lock_reads, reconnected)
            result = txn.run(change, lambda: self._rollback(conn))
            try:
                conn.commit()
            except sa_exc.SQLAlchemyError as exc:
                self._rollback(conn)
                # NOTE: never Reconnect here: the commit may have happened.
                raise failures.translate(
                    'committing', exc,
                    optimistic=self.races_on_insert) from None
            return result
        finally:
            try:
                conn.close()
            except sa_exc.SQLAlchemyError as exc:
                LOG.warning('Error while releasing a connection: %s', exc)

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
    def _schema_connection(self, what):
        """A connection in a write transaction, holding the schema lock."""
        self._check_process()
        with self._serialized(), schema.connection(
                self._engine, what, self._write_options,
                self._query_timeout_ms) as conn:
            yield conn

    def upgrade_schema(self, kinds=None):  # tables migrate as one
        with self._schema_connection('upgrading the schema') as conn:
            schema.upgrade(conn)

    def drop_schema(self):
        with self._schema_connection('dropping the schema') as conn:
            schema.drop(conn)

    def describe_schema(self, kinds=None):  # tables describe as one
        return self._read('describing the schema',
                          lambda conn: schema.describe(conn, self._backend))

    def close(self):
        for engine in self._engines:
            engine.dispose()
        if self._writers is not None:
            self._writers.close()
