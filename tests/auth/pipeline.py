"""The whole keystone paste pipeline, in process, over a real Keystone.

For tests that need their own configuration (policy file, central
scheduler settings) without starting a server: the WSGI application is the
one ``freezer_api.bootstrap`` builds for uwsgi, called through
``falcon.testing``, and keystonemiddleware validates tokens against the
real Keystone of ``tests/fixtures/keystone.py``.
"""

import json

import falcon.testing

from freezer_api import bootstrap
from freezer_api.cmd import common
from tests.fixtures import keystone as keystone_fixture
from tests.fixtures import servers


def load(tmp_path, keystone, extra='', config_extra=''):
    """The WSGI pipeline of a fresh service on its own SQLite file."""
    config = servers.write_config(
        tmp_path / 'freezer-api.conf',
        f'sqlite:///{tmp_path}/freezer.sqlite', auth_strategy='keystone',
        extra=keystone_fixture.keystone_config(keystone, extra=extra)
        + config_extra
        # NOTE: in process, a sweep thread would outlive the test
        + '\n[health]\nsweep_interval = 0\n')
    conf = common.load_config(['--config-file', str(config)],
                              default_files=[])
    return Client(bootstrap.load_application(conf), keystone)


class Client:
    """Requests as a Keystone account, through ``falcon.testing``."""

    def __init__(self, app, keystone):
        self.app = app
        self.keystone = keystone

        # NOTE: falcon.testing inspects the signature of what it calls,
        # which oslo.middleware's objects do not have.
        def wsgi(environ, start_response):
            return app(environ, start_response)

        self.http = falcon.testing.TestClient(wsgi)

    def call(self, method, path, account=None, body=None, token=None,
             headers=None):
        headers = dict(headers or {})
        if account is not None:
            token = self.keystone.token(account)
        if token:
            headers['X-Auth-Token'] = token
        kwargs = {}
        if body is not None:
            kwargs['body'] = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        return self.http.simulate_request(method, path, headers=headers,
                                          **kwargs)
