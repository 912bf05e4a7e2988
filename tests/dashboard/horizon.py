"""Horizon with the freezer-web-ui plugin, in a virtualenv of its own.

``ensure_venv()`` builds (once, under ``~/.cache/freezer-api``, with
``tests.fixtures.venvs.cached_virtualenv``) a virtualenv holding Horizon,
freezer-web-ui and the python-freezerclient it talks through, at the
versions pinned in ``PINS``. The build also writes Horizon's
``local_settings.py``, enables the plugin's panels (its ``enabled/_50*.py``
files copied into ``openstack_dashboard/local/enabled``) and runs
``collectstatic`` and ``compress`` once, so that serving needs no network
and no writes into the virtualenv.

``HorizonServer`` serves it with uwsgi (the test environment's, hosting the
other virtualenv with ``--virtualenv`` as Keystone is hosted) on a free
loopback port. What changes per run (the Keystone URL, the log file, the
session folder, the secret key) reaches ``local_settings.py`` through
``FREEZER_DASHBOARD_*`` environment variables.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid

import pytest

from tests.fixtures import servers
from tests.fixtures import venvs

PINS = {'horizon': '27.0.0', 'freezer-web-ui': '19.0.0',
        'python-freezerclient': '6.5.0'}

# NOTE: file sessions and a local-memory cache: no memcached to run; one
# uwsgi worker process, so the cache is never split. DEBUG off as in
# production, with Horizon's log in a file the tests read. Static files
# are collected and compressed at build time (COMPRESS_OFFLINE).
LOCAL_SETTINGS = textwrap.dedent("""\
    # Written by freezer-api's tests (tests/dashboard/horizon.py).
    import os

    _HERE = os.path.dirname(os.path.abspath(__file__))
    _ENV = os.environ.get

    DEBUG = False
    ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
    SECRET_KEY = _ENV('FREEZER_DASHBOARD_SECRET_KEY', 'build-time-only')
    OPENSTACK_KEYSTONE_URL = _ENV('FREEZER_DASHBOARD_KEYSTONE_URL',
                                  'http://127.0.0.1:5000/v3')
    OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'
    SESSION_ENGINE = 'django.contrib.sessions.backends.file'
    SESSION_FILE_PATH = _ENV('FREEZER_DASHBOARD_SESSIONS') or None
    CACHES = {'default': {
        'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}
    COMPRESS_ENABLED = True
    COMPRESS_OFFLINE = True
    STATIC_ROOT = os.path.join(_HERE, 'static_root')
    LOGGING = {
        'version': 1,
        'disable_existing_loggers': False,
        'formatters': {'plain': {
            'format': '%(asctime)s %(levelname)s %(name)s %(message)s'}},
        'handlers': {'file': {
            'class': 'logging.FileHandler', 'formatter': 'plain',
            'filename': _ENV('FREEZER_DASHBOARD_LOG') or os.devnull}},
        'root': {'handlers': ['file'], 'level': 'INFO'},
    }
    """)


def venv_name():
    pins = '-'.join(f'{name}-{version}' for name, version in
                    sorted(PINS.items()))
    return 'dashboard-{0}-py{1}.{2}'.format(pins, *sys.version_info[:2])


class HorizonVenv:
    """Paths into Horizon's virtualenv."""

    def __init__(self, path):
        self.path = path
        self.python = os.path.join(path, 'bin', 'python')

    def _site_packages(self):
        out = subprocess.run(
            [self.python, '-c',
             'import os, openstack_dashboard as o; '
             'print(os.path.dirname(o.__file__))'],
            capture_output=True, text=True, timeout=120, check=False,
            env=self.env())
        return out.stdout.strip() if out.returncode == 0 else None

    @property
    def dashboard_dir(self):
        """The installed ``openstack_dashboard`` package."""
        return self._site_packages()

    def static_root(self, dashboard_dir):
        return os.path.join(dashboard_dir, 'local', 'static_root')

    def env(self, **extra):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(('OS_', 'FREEZER_', 'PYTHON',
                                      'DJANGO_'))
               and key not in ('VIRTUAL_ENV', 'PIP_REQUIRE_VIRTUALENV')}
        env['DJANGO_SETTINGS_MODULE'] = 'openstack_dashboard.settings'
        env.update(extra)
        return env

    def healthy(self):
        """The pins installed, the plugin enabled, the assets compressed."""
        probe = textwrap.dedent(f"""\
            import importlib.metadata as m, json, os
            import openstack_dashboard, freezer_ui, freezerclient
            here = os.path.dirname(openstack_dashboard.__file__)
            manifest = os.path.join(here, 'local', 'static_root',
                                    'dashboard', 'manifest.json')
            enabled = os.path.join(here, 'local', 'enabled',
                                   '_5054_freezer_jobs.py')
            ok = os.path.isfile(manifest) and os.path.isfile(enabled)
            print(json.dumps(ok and {{n: m.version(n)
                                     for n in {sorted(PINS)!r}}}))
            """)
        try:
            out = subprocess.run([self.python, '-c', probe],
                                 capture_output=True, text=True,
                                 timeout=120, env=self.env())
        except (OSError, subprocess.SubprocessError):
            return False
        try:
            return (out.returncode == 0 and
                    json.loads(
                        out.stdout.strip().splitlines()[-1]) == PINS)
        except (ValueError, IndexError):
            return False

    def build(self):
        what = f'cannot build the dashboard virtualenv {self.path}'
        # made with this run's interpreter: the test environment's uwsgi
        # hosts it (--virtualenv)
        venvs.install_pins(self.path, PINS, what)
        dashboard = self.dashboard_dir
        if not dashboard:
            pytest.fail(f'{what}: openstack_dashboard does not import',
                        pytrace=False)
        with open(os.path.join(dashboard, 'local', 'local_settings.py'),
                  'w') as handle:
            handle.write(LOCAL_SETTINGS)
        plugin = os.path.join(os.path.dirname(dashboard), 'freezer_ui',
                              'enabled')
        for path in glob.glob(os.path.join(plugin, '_50*.py')):
            shutil.copy(path, os.path.join(dashboard, 'local', 'enabled'))
        admin = os.path.join(self.path, 'bin', 'django-admin')
        venvs.run([admin, 'collectstatic', '--noinput', '-v0'], what,
                  env=self.env())
        venvs.run([admin, 'compress', '--force'], what, env=self.env())


def ensure_venv():
    venv = HorizonVenv(os.path.join(venvs.cache_root(), venv_name()))
    venvs.cached_virtualenv(
        venv.path, json_pins() + LOCAL_SETTINGS,
        lambda path: venv.build(), healthy=lambda path: venv.healthy())
    return venv


def json_pins():
    return ''.join(f'{name}=={version}\n' for name, version in
                   sorted(PINS.items()))


class HorizonServer:
    """Horizon under uwsgi on loopback, trusting ``keystone``."""

    def __init__(self, venv, keystone, workdir):
        self.venv = venv
        self.workdir = str(workdir)
        self.log_path = os.path.join(self.workdir, 'horizon.log')
        sessions = os.path.join(self.workdir, 'sessions')
        os.makedirs(sessions, exist_ok=True)
        dashboard = venv.dashboard_dir
        port = servers.free_port()
        env = venv.env(FREEZER_DASHBOARD_KEYSTONE_URL=keystone.auth_url,
                       FREEZER_DASHBOARD_LOG=self.log_path,
                       FREEZER_DASHBOARD_SESSIONS=sessions,
                       FREEZER_DASHBOARD_SECRET_KEY=uuid.uuid4().hex,
                       HOME=self.workdir)
        # NOTE: one process (the local-memory cache is per process),
        # threads for the browser's parallel asset requests; Connection:
        # close as for Keystone (uwsgi's plain http socket keeps no
        # connection alive properly).
        argv = [os.path.join(servers.BIN, 'uwsgi'),
                '--http-socket', f'127.0.0.1:{port}',
                '--virtualenv', venv.path,
                '--module', 'openstack_dashboard.wsgi:application',
                '--need-app', '--master', '--processes', '1',
                '--threads', '4', '--die-on-term', '--lazy-apps',
                '--static-map', f'/static={venv.static_root(dashboard)}',
                '--add-header', 'Connection: close',
                '--buffer-size', '65535']
        self.server = servers.Server(argv, f'http://127.0.0.1:{port}', env,
                                     os.path.join(self.workdir, 'uwsgi.log'))
        self.url = self.server.url
        try:
            self.server.wait_ready(timeout=180)
        except AssertionError as error:
            pytest.fail(f'Horizon did not start: {error}', pytrace=False)

    def log(self):
        try:
            with open(self.log_path, 'rb') as handle:
                return handle.read().decode(errors='replace')
        except OSError:
            return ''

    def stop(self):
        self.server.stop()
