"""The storage contract on SQLite, the embedded default."""

import os

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
