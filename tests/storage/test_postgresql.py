"""The storage contract on PostgreSQL (a real server, see
tests/fixtures/postgresql.py)."""

import socket

import pytest

from . import contract

pytestmark = pytest.mark.postgresql


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def database_url(postgresql_server):
    # One database for the module; each test starts by emptying it.
    url = postgresql_server.create_database()
    yield url
    postgresql_server.drop_database(url)


class TestPostgreSQL(contract.SQLAlchemyContract):

    @pytest.fixture
    def backend(self, database_url):
        return contract.SQLAlchemyBackend(
            database_url,
            unreachable_url=('postgresql+psycopg://freezer:secret@127.0.0.1:'
                             f'{_closed_port()}/freezer'),
            serialized_writers=False)
