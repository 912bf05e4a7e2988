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
