"""The storage contract on SQLite, the embedded default."""

import os
import sqlite3

import pytest

from . import contract


class TestSQLite(contract.SQLAlchemyContract):

    @pytest.fixture
    def backend(self, tmp_path):
        # A regular file where a directory should be: unreachable even
        # for root.
        blocker = tmp_path / 'not-a-directory'
        blocker.write_text('')
        return contract.SQLAlchemyBackend(
            f'sqlite:///{tmp_path}/freezer.sqlite',
            unreachable_url=f'sqlite:///{blocker}/sub/freezer.sqlite',
            serialized_writers=True,
            state_path=str(tmp_path / 'state'))


def test_default_database_is_a_file_in_state_path(tmp_path):
    state_path = tmp_path / 'new' / 'state'
    factory = contract.DriverFactory(contract.SQLALCHEMY_DRIVER, {
        'DEFAULT': {'state_path': str(state_path)}})
    driver = factory()
    try:
        driver.upgrade_schema()
        record = contract.add(driver)
        assert driver.get('jobs', record.id, contract.ALL) == record
        assert os.path.isfile(state_path / 'freezer-api.sqlite')
    finally:
        driver.close()


def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_state_directory_and_database_files_are_private(tmp_path):
    """Issue 13.6: no other local user reads the database or its WAL."""
    state_path = tmp_path / 'state'
    old_umask = os.umask(0o022)
    try:
        factory = contract.DriverFactory(contract.SQLALCHEMY_DRIVER, {
            'DEFAULT': {'state_path': str(state_path)}})
        driver = factory()
        try:
            driver.upgrade_schema()
            contract.add(driver)
            database = state_path / 'freezer-api.sqlite'
            files = [database, f'{database}-wal', f'{database}-shm',
                     f'{database}.writer']
            for name in files:
                assert os.path.exists(name), name
                assert _mode(name) == 0o600, (name, oct(_mode(name)))
            assert _mode(state_path) == 0o750
        finally:
            driver.close()
    finally:
        os.umask(old_umask)


def test_world_readable_database_is_made_private(tmp_path):
    database = tmp_path / 'old.sqlite'
    database.write_bytes(b'')
    os.chmod(database, 0o644)
    factory = contract.DriverFactory(contract.SQLALCHEMY_DRIVER, {
        'database': {'connection': f'sqlite:///{database}'}})
    driver = factory()
    try:
        driver.upgrade_schema()
        assert _mode(database) == 0o600
        assert _mode(f'{database}-wal') == 0o600
    finally:
        driver.close()


class _BusyDuringPassiveCheckpoints:
    """A pooled connection whose passive checkpoints each run while a
    reader holds an older snapshot than another process's last write (as
    under load, where reads and writes never stop)."""

    def __init__(self, raw, path, write):
        self._raw = raw
        self._path = path
        self._write = write

    def __getattr__(self, name):
        return getattr(self._raw, name)

    @property
    def driver_connection(self):
        return self

    def execute(self, sql, *args):
        if 'wal_checkpoint(PASSIVE)' not in sql:
            return self._raw.driver_connection.execute(sql, *args)
        reader = sqlite3.connect(self._path, isolation_level=None)
        try:
            reader.execute('BEGIN')
            reader.execute('SELECT count(*) FROM jobs').fetchone()
            self._write()
            return self._raw.driver_connection.execute(sql, *args)
        finally:
            reader.close()


def test_the_wal_starts_over_though_others_keep_reading_and_writing(
        tmp_path):
    """SQLite starts its WAL over only after a checkpoint copied all of
    it; a passive checkpoint cannot copy what a reader's snapshot does
    not hold yet, so under steady load it never did, and the WAL grew
    without end (3.8 GB in five minutes of ``bench.audit_http``)."""
    path = f'{tmp_path}/freezer.sqlite'
    factory = contract.DriverFactory(contract.SQLALCHEMY_DRIVER, {
        'database': {'connection': f'sqlite:///{path}'}})
    driver, other = factory(), factory()
    try:
        driver.upgrade_schema()
        queue = driver._writers
        # a WAL of 64 documents' pages is long enough to start over
        queue.RESTART_FRAMES = 100
        raw_connection = queue._raw_connection
        writes = iter(range(10 ** 6))
        queue._raw_connection = lambda: _BusyDuringPassiveCheckpoints(
            raw_connection(), path, lambda: contract.add(
                other, doc_id=f'other-{next(writes)}'))
        for number in range(3 * queue.CHECKPOINT_EVERY):
            contract.add(driver, doc_id=f'doc-{number}')
        assert queue.restarts == 3
        contract.add(driver, doc_id='last')
        # frames in the WAL now: the last write's, not the hundreds of
        # pages of the 200 documents before it
        with sqlite3.connect(path) as conn:
            _, frames, _ = conn.execute(
                'PRAGMA wal_checkpoint(PASSIVE)').fetchone()
        assert 0 < frames < 40, frames
    finally:
        driver.close()
        other.close()


def test_changes_keep_to_one_connection_while_reads_use_the_pool(tmp_path):
    """SQLite drops a connection's page cache when another connection
    wrote: the changes of a process keep to one connection of their own,
    whatever the reads between them took from the pool."""
    factory = contract.DriverFactory(contract.SQLALCHEMY_DRIVER, {
        'database': {'connection': f'sqlite:///{tmp_path}/freezer.sqlite'}})
    driver = factory()
    try:
        driver.upgrade_schema()
        # three idle connections in the read pool, taken in turns
        held = [driver._engine.connect() for _ in range(3)]
        for conn in held:
            conn.close()
        used = set()
        for number in range(6):
            record = driver.atomic(lambda txn: used.add(
                id(txn._conn.connection.driver_connection)) or txn.insert(
                    'jobs', f'job-{number}', contract.P1, contract.U1, 1,
                    {'n': number}))
            assert driver.get('jobs', record.id, contract.ALL) == record
        assert len(used) == 1
    finally:
        driver.close()
