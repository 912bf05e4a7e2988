"""The storage contract on MariaDB (a real server, see
tests/fixtures/mariadb.py)."""

import socket

import pytest

from . import contract

pytestmark = pytest.mark.mariadb


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class MariaDBBackend(contract.SQLAlchemyBackend):
    """The SQLAlchemy backend on a MariaDB database."""

    def __init__(self, server, url, **kwargs):
        super().__init__(url, **kwargs)
        self.server = server

    def drop_connections(self):
        # As a server restart would: every pooled connection dies.
        self.server.drop_connections(self.url)


@pytest.fixture(scope='module')
def database_url(mariadb_server):
    # One database for the module; each test starts by emptying it.
    url = mariadb_server.create_database()
    yield url
    mariadb_server.drop_database(url)


class TestMariaDB(contract.SQLAlchemyContract):

    @pytest.fixture
    def backend(self, mariadb_server, database_url):
        return MariaDBBackend(
            mariadb_server, database_url,
            unreachable_url=('mysql+pymysql://freezer:secret@127.0.0.1:'
                             f'{_closed_port()}/freezer'),
            serialized_writers=False)

    def test_errors_do_not_name_the_engine(self, backend, driver):
        # The contract's list of backend words predates MySQL: check its
        # names too on the errors a caller sees.
        words = ('mysql', 'mariadb', 'innodb', 'duplicate entry')
        contract.add(driver, 'clients', 'c')
        with pytest.raises(contract.errors.Conflict) as info:
            contract.add(driver, 'clients', 'c')
        contract.assert_clean_message(info.value, *words)
        unreachable = backend.unreachable_driver()
        try:
            with pytest.raises(contract.errors.Unavailable) as info:
                unreachable.ping()
        finally:
            unreachable.close()
        contract.assert_clean_message(info.value, *words)
