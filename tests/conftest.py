"""Fixtures shared by every test package.

``api_app`` is the whole WSGI stack a noauth deployment runs (identity
middleware + Falcon app) over a real storage driver, with a clock the test
controls so that session hold-off rules need no sleeping.
"""

import os
import shutil

import falcon.testing
import pytest
from oslo_config import cfg

from freezer_api import conf as conf_pkg
from freezer_api.api import app as app_module
from freezer_api.api import context

pytest_plugins = ['tests.fixtures.postgresql', 'tests.fixtures.elasticsearch',
                  'tests.fixtures.mariadb', 'tests.fixtures.keystone',
                  'tests.fixtures.openstack_clients', 'tests.fixtures.tiers',
                  'tests.fixtures.rabbitmq']


class Clock:
    """A settable clock: ``clock()`` returns seconds since the epoch."""

    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def make_conf(tmp_path, **overrides):
    conf = cfg.ConfigOpts()
    conf_pkg.configure(conf)
    conf([], project='freezer-api', default_config_files=[])
    conf.set_override('state_path', str(tmp_path))
    conf.set_override('auth_strategy', 'noauth')
    conf.set_override('connection', f'sqlite:///{tmp_path}/freezer.sqlite',
                      group='database')
    # NOTE: no background sweep unless a test asks (they read the store
    # and the clock themselves)
    conf.set_override('sweep_interval', 0.0, group='health')
    for key, value in overrides.items():
        group, _, name = key.rpartition('.')
        conf.set_override(name, value, group=group or None)
    return conf


@pytest.fixture
def conf(tmp_path):
    return make_conf(tmp_path)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(scope='session')
def migrated_sqlite(tmp_path_factory):
    """A SQLite file migrated once; tests get copies (Alembic is slow)."""
    from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
    folder = tmp_path_factory.mktemp('template')
    driver = SQLAlchemyDriver(make_conf(folder))
    driver.upgrade_schema()
    driver.close()
    return folder / 'freezer.sqlite'


# The engines the HTTP suite runs on; every one must give the same answers.
# NOTE: PostgreSQL is left out by default to keep CI well inside its time:
# it shares the SQL driver with SQLite, and the storage contract, the
# migration, soak, crash and outage tests run on it. Add it with
# FREEZER_TEST_API_BACKENDS=sqlite,postgresql,elasticsearch.
API_BACKENDS = os.environ.get('FREEZER_TEST_API_BACKENDS',
                              'sqlite,elasticsearch').split(',')


def pytest_generate_tests(metafunc):
    # NOTE: a test module may narrow the engines with a BACKENDS tuple
    # (tests/api/test_errors.py: bad input is refused before storage).
    if 'storage_backend' in metafunc.fixturenames:
        wanted = getattr(metafunc.module, 'BACKENDS', API_BACKENDS)
        metafunc.parametrize('storage_backend',
                             [b for b in API_BACKENDS if b in wanted])


@pytest.fixture(scope='session')
def postgresql_suite_driver(postgresql_server, tmp_path_factory):
    """One driver on one migrated database, emptied before each test.

    NOTE: a driver keeps no per-test state, and sharing it avoids a new
    connection pool per test; DELETE is much faster than TRUNCATE on the
    few rows a test leaves.
    """
    from freezer_api.storage.sqlalchemy import models
    from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
    url = postgresql_server.create_database('freezer_api_suite')
    conf = make_conf(tmp_path_factory.mktemp('pg'),
                     **{'database.connection': url})
    driver = SQLAlchemyDriver(conf)
    driver.upgrade_schema()
    statements = ';'.join(f'DELETE FROM {table.name}' for table in
                          reversed(models.metadata.sorted_tables))

    def empty():
        with driver._engine.begin() as conn:
            conn.exec_driver_sql(statements)

    yield driver, empty
    driver.close()
    postgresql_server.drop_database(url)


@pytest.fixture(scope='session')
def elasticsearch_suite_driver(elasticsearch_server, tmp_path_factory):
    """One driver on one index, emptied before each test."""
    from freezer_api.storage.elasticsearch.driver import ElasticsearchDriver
    from tests.fixtures.elasticsearch import IndexRef
    index = IndexRef(elasticsearch_server,
                     elasticsearch_server.new_index_name())
    driver = ElasticsearchDriver(make_conf(tmp_path_factory.mktemp('es'),
                                           **index.overrides))
    driver.upgrade_schema()
    yield driver, index.empty
    driver.close()
    index.delete()


@pytest.fixture
def storage(request, storage_backend, conf, tmp_path):
    from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
    if storage_backend == 'sqlite':
        template = request.getfixturevalue('migrated_sqlite')
        shutil.copyfile(template, tmp_path / 'freezer.sqlite')
        driver = SQLAlchemyDriver(conf)
        yield driver
        driver.close()
    elif storage_backend in ('postgresql', 'elasticsearch'):
        driver, empty = request.getfixturevalue(
            f'{storage_backend}_suite_driver')
        empty()
        yield driver
    else:
        raise ValueError(f'unknown test backend {storage_backend!r}')


@pytest.fixture(scope='session')
def policy_enforcer(tmp_path_factory):
    """The default policy, parsed once (oslo.policy is slow to build)."""
    from freezer_api import policies
    return policies.get_enforcer(make_conf(tmp_path_factory.mktemp('pol')))


@pytest.fixture
def api_app(conf, storage, clock, policy_enforcer):
    app = app_module.create_app(conf, storage, enforcer=policy_enforcer,
                                clock=clock)
    return context.NoAuthMiddleware(app, conf)


@pytest.fixture
def client(api_app):
    return falcon.testing.TestClient(api_app)
