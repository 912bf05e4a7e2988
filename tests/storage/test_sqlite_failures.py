"""What the SQL driver makes of database failures (``failures``), and a
locked SQLite file (``sqlite``): every path ends in Unavailable, never in
a 500, and readers go on while a writer waits.

The errors are real: raised by sqlite3, PostgreSQL and MariaDB.
"""

import fcntl
import os
import sqlite3
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from freezer_api.core import audit
from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.sqlalchemy import driver as sql_driver
from freezer_api.storage.sqlalchemy import failures
from freezer_api.storage.sqlalchemy import sqlite
from tests.conftest import make_conf

ALL = base.Scope(None)


def _error(engine, *statements):
    """The SQLAlchemy error the last of ``statements`` raises."""
    with engine.connect() as conn:
        for sql in statements[:-1]:
            conn.exec_driver_sql(sql)
        with pytest.raises(sa_exc.DBAPIError) as info:
            conn.exec_driver_sql(statements[-1])
        conn.rollback()
    return info.value


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = sa.create_engine(f'sqlite:///{tmp_path}/f.sqlite',
                              connect_args={'timeout': 0.05})
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE t (id TEXT PRIMARY KEY)')
        conn.exec_driver_sql("INSERT INTO t VALUES ('a')")
    yield engine
    engine.dispose()


def test_sqlite_unique_violation_is_a_duplicate(sqlite_engine):
    exc = _error(sqlite_engine, "INSERT INTO t VALUES ('a')")
    assert failures.classify(exc) == failures.DUPLICATE
    # writers that take turns never lost a race: nothing to run again
    assert isinstance(failures.translate('x', exc), errors.Unavailable)
    assert isinstance(failures.translate('x', exc, optimistic=True),
                      base.LostRace)


def test_sqlite_locked_file_is_busy_and_unavailable(sqlite_engine, tmp_path):
    holder = sqlite3.connect(tmp_path / 'f.sqlite', isolation_level=None)
    holder.execute('BEGIN EXCLUSIVE')
    try:
        exc = _error(sqlite_engine, "INSERT INTO t VALUES ('b')")
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    assert failures.classify(exc) == failures.BUSY
    # a lock is no race, even for optimistic writers
    error = failures.translate('writing', exc, optimistic=True,
                               may_reconnect=True)
    assert type(error) is errors.Unavailable
    assert error.message == failures.UNAVAILABLE
    # the same error met outside SQLAlchemy (the raw read path)
    assert failures.classify(exc.orig) == failures.BUSY
    assert type(failures.unavailable('reading', exc.orig)) is (
        errors.Unavailable)


def test_sqlite_interrupted_statement_is_a_query_timeout(sqlite_engine):
    with sqlite_engine.connect() as conn:
        dbapi_conn = conn.connection.driver_connection
        dbapi_conn.set_progress_handler(lambda: 1, 1)
        with pytest.raises(sa_exc.DBAPIError) as info:
            conn.exec_driver_sql('SELECT count(*) FROM t')
        dbapi_conn.set_progress_handler(None, 1)
    assert failures.classify(info.value) == failures.TIMEOUT
    error = failures.translate('listing', info.value)
    assert isinstance(error, errors.QueryTimeout)
    assert 'SELECT' not in error.message


def test_dead_connection_is_run_again_only_when_allowed(sqlite_engine):
    exc = _error(sqlite_engine, 'SELECT * FROM no_such_table')
    assert failures.classify(exc) == failures.FAILED
    exc.connection_invalidated = True
    assert failures.classify(exc) == failures.DISCONNECT
    assert isinstance(failures.translate('x', exc, may_reconnect=True),
                      base.Reconnect)
    # e.g. at COMMIT: the change may have been committed
    error = failures.translate('committing', exc, optimistic=True)
    assert type(error) is errors.Unavailable
    assert 'no_such_table' not in error.message


def test_postgresql_errors(postgresql_url):
    engine = sa.create_engine(postgresql_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql('CREATE TABLE t (id TEXT PRIMARY KEY)')
            conn.exec_driver_sql("INSERT INTO t VALUES ('a')")
        exc = _error(engine, "INSERT INTO t VALUES ('a')")
        assert failures.classify(exc) == failures.DUPLICATE
        with engine.connect() as holder:
            holder.exec_driver_sql('SELECT * FROM t FOR UPDATE')
            exc = _error(engine, 'SELECT * FROM t FOR UPDATE NOWAIT')
            holder.rollback()
        assert failures.classify(exc) == failures.RETRY
        assert isinstance(failures.translate('x', exc, optimistic=True),
                          base.LostRace)
        exc = _error(engine, 'SET statement_timeout = 1',
                     'SELECT pg_sleep(1)')
        assert failures.classify(exc) == failures.TIMEOUT
        exc = _error(engine, 'SELECT * FROM no_such_table')
        assert failures.classify(exc) == failures.FAILED
    finally:
        engine.dispose()


def test_mariadb_errors(mariadb_url):
    engine = sa.create_engine(mariadb_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                'CREATE TABLE t (id VARCHAR(8) PRIMARY KEY) ENGINE=InnoDB')
            conn.exec_driver_sql("INSERT INTO t VALUES ('a')")
        exc = _error(engine, "INSERT INTO t VALUES ('a')")
        assert failures.classify(exc) == failures.DUPLICATE
        with engine.connect() as holder:
            holder.exec_driver_sql('SELECT * FROM t FOR UPDATE')
            exc = _error(engine, 'SET SESSION innodb_lock_wait_timeout = 1',
                         'SELECT * FROM t FOR UPDATE')
            holder.rollback()
        assert failures.classify(exc) == failures.RETRY
        exc = _error(engine, 'SET SESSION max_statement_time = 0.01',
                     'SELECT SLEEP(1) FROM t')
        assert failures.classify(exc) == failures.TIMEOUT
    finally:
        engine.dispose()


# -- the driver on a locked SQLite file ---------------------------------


@pytest.fixture
def driver(tmp_path):
    conf = make_conf(tmp_path, **{'database.sqlite_busy_timeout': 200})
    driver = sql_driver.SQLAlchemyDriver(conf)
    driver.upgrade_schema()
    driver.create('jobs', 'j1', 'p', 'u', 1, {'description': 'one'})
    yield driver
    driver.close()


def test_writer_meets_a_file_locked_outside_the_queue(driver, tmp_path):
    """Another program writing: writers give up after the busy timeout,
    readers go on (WAL), and writing works again afterwards."""
    holder = sqlite3.connect(tmp_path / 'freezer.sqlite',
                             isolation_level=None)
    holder.execute('BEGIN IMMEDIATE')
    try:
        with pytest.raises(errors.Unavailable) as info:
            driver.create('jobs', 'j2', 'p', 'u', 2, {})
        assert info.value.message == failures.UNAVAILABLE
        assert driver.get('jobs', 'j1', ALL).doc == {'description': 'one'}
        assert [r.id for r in driver.list('jobs', ALL, _everything(), 10,
                                          0)] == ['j1']
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    driver.create('jobs', 'j2', 'p', 'u', 2, {})
    assert driver.get('jobs', 'j2', ALL).version == 1


def test_writer_waits_its_turn_in_the_queue_up_to_the_timeout(driver,
                                                              tmp_path):
    """A writer of another process holds the queue: this one gives up
    after the busy timeout; once the turn is free it writes."""
    other = sqlite.WriterQueue(f'{tmp_path}/freezer.sqlite.writer', 1.0,
                               None)
    turn = other.turn()
    turn.__enter__()
    try:
        with pytest.raises(errors.Unavailable):
            driver.create('jobs', 'j2', 'p', 'u', 2, {})
    finally:
        turn.__exit__(None, None, None)
        other.close()
    driver.create('jobs', 'j2', 'p', 'u', 2, {})


def _waiting_for_the_turn(queue):
    """A thread taking ``queue``'s turn; ``took`` is set once it has."""
    took = threading.Event()

    def take():
        with queue.turn():
            took.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, took


def _hand_over(path):
    """A writer of one queue holds the turn while one of another waits
    for it (two processes' worth), then lets it go: the waiter takes it."""
    holder, waiter = (sqlite.WriterQueue(path, 30.0, None) for _ in 'ab')
    try:
        turn = holder.turn()
        turn.__enter__()
        thread, took = _waiting_for_the_turn(waiter)
        assert not took.wait(0.3)      # waiting: the turn is held
        turn.__exit__(None, None, None)
        assert took.wait(20)
        thread.join(20)
    finally:
        holder.close()
        waiter.close()


def test_a_writer_letting_the_turn_go_wakes_the_waiting_one(tmp_path,
                                                            monkeypatch):
    """The doorbell: a writer of another process waiting for the turn
    takes it when the holder lets it go, not at its next look (made 60 s
    here, so that only the ring can wake it in time)."""
    monkeypatch.setattr(sqlite._Doorbell, 'FALLBACK', 60.0)
    path = f'{tmp_path}/freezer.sqlite.writer'
    _hand_over(path)
    assert oct(os.stat(path + '.bell').st_mode & 0o777) == oct(0o600)


def test_a_holder_that_rings_no_bell_is_noticed(tmp_path):
    """A holder that dies (its lock goes with its process) rings no bell:
    the waiter takes the turn at its next look."""
    path = f'{tmp_path}/freezer.sqlite.writer'
    waiter = sqlite.WriterQueue(path, 30.0, None)
    with open(path, 'a+') as dead:
        fcntl.flock(dead, fcntl.LOCK_EX)
        thread, took = _waiting_for_the_turn(waiter)
        assert not took.wait(0.3)
    # closed: the lock is gone, and nobody rang
    try:
        assert took.wait(20)
        thread.join(20)
    finally:
        waiter.close()


def test_a_doorbell_that_is_not_a_fifo_is_not_used(tmp_path, caplog):
    """Something else at the doorbell's path (a file, a link): writers
    still take turns, looking at the lock now and then, and the file is
    left as it was."""
    path = f'{tmp_path}/freezer.sqlite.writer'
    with open(path + '.bell', 'w') as handle:
        handle.write('not a fifo')
    _hand_over(path)
    with open(path + '.bell') as handle:
        assert handle.read() == 'not a fifo'
    assert 'is not a FIFO' in caplog.text


def test_reader_meets_an_exclusive_lock(tmp_path, caplog):
    """A file locked even for readers (exclusive locking mode): reads are
    Unavailable, not a 500."""
    conf = make_conf(tmp_path, **{'database.sqlite_busy_timeout': 100})
    setup = sql_driver.SQLAlchemyDriver(conf)
    setup.upgrade_schema()
    setup.create('jobs', 'j1', 'p', 'u', 1, {})
    setup.close()
    holder = sqlite3.connect(tmp_path / 'freezer.sqlite',
                             isolation_level=None)
    holder.execute('PRAGMA locking_mode = EXCLUSIVE')
    holder.execute('BEGIN EXCLUSIVE')
    holder.execute("UPDATE jobs SET version = 1 WHERE id = 'j1'")
    reader = sql_driver.SQLAlchemyDriver(conf)
    try:
        with pytest.raises(errors.Unavailable):
            reader.get('jobs', 'j1', ALL)
        with pytest.raises(errors.Unavailable):
            reader.ping()
        locked = [r.getMessage() for r in caplog.records
                  if 'stayed locked' in r.getMessage()]
        assert len(locked) == 2, caplog.text
    finally:
        holder.execute('ROLLBACK')
        holder.close()
        reader.close()


def test_writers_of_two_drivers_take_turns(tmp_path):
    """Two drivers on one file (two processes' worth): concurrent
    increments are all kept, through the queue."""
    conf = make_conf(tmp_path)
    first = sql_driver.SQLAlchemyDriver(conf)
    first.upgrade_schema()
    first.create('jobs', 'n', 'p', 'u', 1, {'n': 0})
    second = sql_driver.SQLAlchemyDriver(conf)

    def increment(txn):
        record = txn.get('jobs', 'n', ALL)
        txn.update(record, {'n': record.doc['n'] + 1})

    def work(driver):
        for _ in range(20):
            driver.atomic(increment)

    try:
        threads = [threading.Thread(target=work, args=(d,))
                   for d in (first, second, first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert first.get('jobs', 'n', ALL).doc == {'n': 80}
    finally:
        first.close()
        second.close()


def _everything():
    from freezer_api.storage import query
    return query.Query()


def _append(driver, at):
    return driver.atomic(lambda txn: txn.append_audit(
        'p', [{'id': f'e{at}', 'project_id': 'p', 'at': at}], audit.seal))


def test_audit_write_error_on_the_dbapi_path_is_translated(driver):
    # The audit statements run on the DB-API connection (PERF): its
    # errors must still become storage errors, and roll the change back.
    first, second = _append(driver, 1)[0], _append(driver, 2)[0]
    with driver._engine.begin() as conn:  # the head falls behind
        conn.exec_driver_sql(
            'UPDATE audit_heads SET seq = 1, hash = ?', (first['hash'],))
    with pytest.raises(errors.Unavailable):
        _append(driver, 3)  # seq 2 again: a duplicate key
    assert driver.audit_head('p') == (1, first['hash'])
    assert driver.audit_chain('p', 0, 10) == [first, second]
    # several records in one change go through executemany
    with pytest.raises(errors.Unavailable):
        driver.atomic(lambda txn: txn.append_audit(
            'p', [{'id': 'x', 'project_id': 'p', 'at': 4},
                  {'id': 'y', 'project_id': 'p', 'at': 5}], audit.seal))
    assert driver.audit_head('p') == (1, first['hash'])
