"""The audit trail on SQL (see ``StorageDriver.append_audit``).

Two tables, no search terms:

``audit_records``
    append-only, one row per record keyed ``(project_id, seq)``, the record
    as JSON text next to ``at`` (indexed, for time filters and purges).
``audit_heads``
    one row per project: the ``seq`` and ``hash`` of its newest record.

PERF: on server databases a change appends with one conditional
``UPDATE`` of its project's head (``WHERE seq = ? AND hash = ?``, the
head this process last wrote) and one ``INSERT``; no read. The head is
read (``FOR UPDATE``) only when this process's idea of it is stale:
another process wrote since, or it never wrote for that project. The
conditional update takes the head row's lock, so concurrent writers of
one project take turns on it until they commit, and writers of different
projects never meet. Including the hash in the condition makes a head
remembered from a change that was rolled back harmless: it matches no
row. On SQLite, where writers take turns for their whole transaction,
the head is read every time (a read costs less than a failed guess, and
with several processes most guesses fail), then advanced as above; the
statements run on the DB-API connection (see ``_execute``).
"""

import json
from typing import Any

import sqlalchemy as sa

from freezer_api.storage import base
from freezer_api.storage.sqlalchemy import models

__all__ = ['audit_records', 'audit_heads', 'audit_events',
           'TransactionAudit',
           'DriverAudit']

audit_records = sa.Table(
    'audit_records', models.metadata,
    sa.Column('project_id', models.exact_string(models.OWNER_LENGTH),
              primary_key=True),
    sa.Column('seq', sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('record', models.long_text(), nullable=False),
    sa.Index('ix_audit_records_at', 'at'),
    **models.TABLE_ARGS,
)

audit_heads = sa.Table(
    'audit_heads', models.metadata,
    sa.Column('project_id', models.exact_string(models.OWNER_LENGTH),
              primary_key=True),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(64), nullable=False),
    **models.TABLE_ARGS,
)

audit_events = sa.Table(
    'audit_events', models.metadata,
    sa.Column('event_id', models.exact_string(128), primary_key=True),
    sa.Column('at', sa.BigInteger(), nullable=False),
    **models.TABLE_ARGS,
)

# Insert unless the id is there, without failing (a failed statement
# would end a PostgreSQL transaction).
_CLAIM = {
    'sqlite': 'INSERT OR IGNORE INTO audit_events (event_id, at) '
              'VALUES (:e, :a)',
    'postgresql': 'INSERT INTO audit_events (event_id, at) VALUES (:e, :a) '
                  'ON CONFLICT DO NOTHING',
    'mysql': 'INSERT IGNORE INTO audit_events (event_id, at) '
             'VALUES (:e, :a)',
}


def _advance_statement():
    return sa.update(audit_heads).where(
        audit_heads.c.project_id == sa.bindparam('p'),
        audit_heads.c.seq == sa.bindparam('old_seq'),
        audit_heads.c.hash == sa.bindparam('old_hash'),
    ).values(seq=sa.bindparam('new_seq'), hash=sa.bindparam('new_hash'))


def _insert_statement():
    return sa.insert(audit_records).values(
        {name: sa.bindparam(name)
         for name in ('project_id', 'seq', 'at', 'record')})


def _dumps(record):
    # a record sealed by core.audit brings its JSON, made for its hash
    text = getattr(record, 'text', None)
    if text is not None:
        return text
    return json.dumps(record, separators=(',', ':'), ensure_ascii=False)


def _run(driver, conn, key, build, values, many=False):
    # PERF: compiled once (see statements.Prepared) and, on SQLite, run on
    # the DB-API connection (statements.Statements.run): through SQLAlchemy
    # the statements cost more than the writes themselves.
    statements = driver._statements
    prepared = statements.prepared(('audit',) + key, build)
    if many:
        return statements.run(conn, prepared.sql,
                              [prepared.parameters(row) for row in values],
                              many=True)
    return statements.run(conn, prepared.sql, prepared.parameters(values))


class TransactionAudit:
    """``append_audit`` for the driver's ``_Transaction`` (a mixin: it
    uses the transaction's ``_driver``, ``_conn`` and ``_guard``)."""

    # what the driver's _Transaction provides
    _driver: Any
    _conn: Any
    _guard: Any
    lost_race: Any

    def append_audit(self, project_id, entries, seal):
        driver, conn = self._driver, self._conn
        heads = driver._audit_heads
        with self._guard('writing the audit trail'):
            sealed = None
            # NOTE: SQLite writers hold the write lock from BEGIN IMMEDIATE
            # to their commit, so the head read there is the head until
            # then: reading it (3 us) beats guessing it, which every write
            # of another process proves wrong (a failed UPDATE, then the
            # read all the same).
            known = None if driver._sqlite else heads.get(project_id)
            if known is not None:
                sealed = seal(entries, *known)
                if not _advance(driver, conn, project_id, known,
                                sealed[-1]):
                    sealed = None
            if sealed is None:
                sealed = _append_after_read(driver, conn, project_id,
                                            entries, seal)
                if sealed is None:
                    raise self.lost_race()
            rows = [{'project_id': project_id, 'seq': record['seq'],
                     'at': record['at'], 'record': _dumps(record)}
                    for record in sealed]
            if len(rows) == 1:
                _run(driver, conn, ('insert',), _insert_statement, rows[0])
            else:
                _run(driver, conn, ('insert',), _insert_statement, rows,
                     many=True)
        if not driver._sqlite:
            # NOTE: remembered before the commit; if it fails, the hash in
            # the condition makes this head match nothing next time.
            heads[project_id] = (sealed[-1]['seq'], sealed[-1]['hash'])
        return sealed


def _advance(driver, conn, project_id, old, new):
    return _run(driver, conn, ('advance',), _advance_statement, {
        'p': project_id, 'old_seq': old[0], 'old_hash': old[1],
        'new_seq': new['seq'], 'new_hash': new['hash']}).rowcount == 1


def _head_statement(lock):
    def build():
        stmt = sa.select(audit_heads.c.seq, audit_heads.c.hash).where(
            audit_heads.c.project_id == sa.bindparam('p'))
        return stmt.with_for_update() if lock else stmt
    return build


def _new_head_statement():
    return sa.insert(audit_heads).values(
        {name: sa.bindparam(name) for name in ('project_id', 'seq', 'hash')})


def _append_after_read(driver, conn, project_id, entries, seal):
    """Seal after the head read from the database (locked on server
    databases; SQLite writers already take turns); None if it moved."""
    lock = driver.races_on_insert
    row = _run(driver, conn, ('head', lock), _head_statement(lock),
               {'p': project_id}).fetchone()
    if row is None:
        sealed = seal(entries, 0, base.AUDIT_GENESIS)
        # a racing first writer makes this a duplicate key: LostRace
        _run(driver, conn, ('new head',), _new_head_statement, {
            'project_id': project_id, 'seq': sealed[-1]['seq'],
            'hash': sealed[-1]['hash']})
        return sealed
    sealed = seal(entries, row[0], row[1])
    if not _advance(driver, conn, project_id, (row[0], row[1]),
                    sealed[-1]):
        return None
    return sealed


def _records(rows):
    return [json.loads(row[0]) for row in rows]


class DriverAudit:
    """The audit reads and the purge for ``SQLAlchemyDriver`` (a mixin:
    it uses the driver's ``_read`` and ``atomic``)."""

    # what SQLAlchemyDriver provides
    _read: Any
    _engine: Any
    atomic: Any
    # project -> (seq, hash) this process last appended; set once by
    # the driver (it was a property that looked itself up twice a write)
    _audit_heads: dict

    def list_audit(self, project_id, since, until, limit, offset):
        table = audit_records
        stmt = sa.select(table.c.record)
        if project_id is not None:
            stmt = stmt.where(table.c.project_id == project_id).order_by(
                table.c.seq)
        else:
            stmt = stmt.order_by(table.c.at, table.c.project_id,
                                 table.c.seq)
        if since is not None:
            stmt = stmt.where(table.c.at >= since)
        if until is not None:
            stmt = stmt.where(table.c.at < until)
        stmt = stmt.limit(limit).offset(offset)
        return self._read('reading the audit trail',
                          lambda conn: _records(conn.execute(stmt)))

    def audit_chain(self, project_id, after_seq, limit):
        table = audit_records
        stmt = sa.select(table.c.record).where(
            table.c.project_id == project_id,
            table.c.seq > after_seq).order_by(table.c.seq).limit(limit)
        return self._read('reading the audit trail',
                          lambda conn: _records(conn.execute(stmt)))

    def audit_head(self, project_id):
        stmt = sa.select(audit_heads.c.seq, audit_heads.c.hash).where(
            audit_heads.c.project_id == project_id)

        def read(conn):
            row = conn.execute(stmt).first()
            return None if row is None else (row[0], row[1])

        return self._read('reading the audit trail', read)

    def audit_projects(self):
        stmt = sa.select(audit_heads.c.project_id).order_by(
            audit_heads.c.project_id)
        return self._read('reading the audit trail',
                          lambda conn: [row[0] for row in conn.execute(stmt)])

    def purge_audit(self, before):
        stmt = sa.delete(audit_records).where(audit_records.c.at < before)
        events = sa.delete(audit_events).where(audit_events.c.at < before)

        def change(txn):
            with txn._guard('purging the audit trail'):
                txn._conn.execute(events)
                return txn._conn.execute(stmt).rowcount

        return self.atomic(change)

    def claim_event(self, event_id, at):
        dialect = self._engine.dialect.name
        sql = sa.text(_CLAIM['mysql' if dialect in ('mysql', 'mariadb')
                             else dialect])

        def change(txn):
            with txn._guard('claiming an event'):
                return txn._conn.execute(
                    sql, {'e': event_id, 'a': at}).rowcount == 1

        return self.atomic(change)
