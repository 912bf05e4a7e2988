"""Fixtures shared by every test package.

``api_app`` is the whole WSGI stack a noauth deployment runs (identity
middleware + Falcon app) over a real storage driver, with a clock the test
controls so that session hold-off rules need no sleeping.
"""

import shutil

import falcon.testing
import pytest
from oslo_config import cfg

from freezer_api import conf as conf_pkg
from freezer_api.api import app as app_module
from freezer_api.api import context

pytest_plugins = ['tests.fixtures.postgresql']


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


@pytest.fixture
def storage(conf, tmp_path, migrated_sqlite):
    from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
    shutil.copyfile(migrated_sqlite, tmp_path / 'freezer.sqlite')
    driver = SQLAlchemyDriver(conf)
    yield driver
    driver.close()


@pytest.fixture
def api_app(conf, storage, clock):
    app = app_module.create_app(conf, storage, clock=clock)
    return context.NoAuthMiddleware(app, conf)


@pytest.fixture
def client(api_app):
    return falcon.testing.TestClient(api_app)
