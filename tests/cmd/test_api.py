"""``freezer-api`` and the WSGI module as real processes."""

import os
import sqlite3

import pytest
import requests

from freezer_api.conf import default
from tests.fixtures import servers

HEADERS = {'X-User-Id': 'alice', 'X-Project-Id': 'proj1'}


@pytest.fixture
def stop_later():
    started = []
    yield started.append
    for server in started:
        server.stop()


def exercise(url):
    """A few calls that need a working store."""
    versions = requests.get(url + '/', timeout=10)
    assert versions.status_code == 300
    assert [v['id'] for v in versions.json()['versions']] == ['v2', 'v1']
    created = requests.post(url + '/v2/proj1/clients/', headers=HEADERS,
                            json={'client_id': 'proj1_node1'}, timeout=10)
    assert created.status_code == 201, created.text
    listed = requests.get(url + '/v1/clients/', headers=HEADERS, timeout=10)
    assert [c['client']['client_id'] for c in listed.json()['clients']] == [
        'proj1_node1']
    assert listed.headers['x-openstack-request-id'].startswith('req-')


def test_runs_with_no_config_on_the_embedded_store(tmp_path, stop_later):
    server = servers.start_freezer_api(tmp_path)
    stop_later(server)
    exercise(server.url)
    database = tmp_path / 'state' / 'freezer-api.sqlite'
    assert database.is_file()
    tables = {row[0] for row in sqlite3.connect(database).execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {'jobs', 'sessions', 'clients', 'actions', 'backups'} <= tables
    log = server.log()
    assert 'noauth' in log and 'NOT authenticated' in log
    assert 'listening on http://127.0.0.1' in log


def test_runs_with_a_config_file(tmp_path, stop_later):
    port = servers.free_port()
    conf = servers.write_config(
        tmp_path / 'freezer-api.conf',
        f'sqlite:///{tmp_path}/configured.sqlite', port=port)
    server = servers.start_freezer_api(
        tmp_path, ['--config-file', str(conf)], port=port)
    stop_later(server)
    exercise(server.url)
    assert (tmp_path / 'configured.sqlite').is_file()


def test_seed_uwsgi_line_serves_the_api(tmp_path, stop_later):
    env = servers.clean_env(tmp_path, FREEZER_API_AUTH_STRATEGY='noauth')
    server = servers.start_uwsgi(tmp_path, env)
    stop_later(server)
    exercise(server.url)


def test_wsgi_module_refuses_to_serve_without_an_auth_strategy(tmp_path):
    """No config file, no FREEZER_API_AUTH_STRATEGY: uwsgi does not
    serve, and its log says how to set the strategy (issue 13.2)."""
    env = servers.clean_env(tmp_path)
    with pytest.raises(AssertionError, match='server exited') as refused:
        servers.start_uwsgi(tmp_path, env)
    log = str(refused.value)
    assert 'freezer-api refuses to serve' in log
    assert 'FREEZER_API_AUTH_STRATEGY=noauth' in log
    assert 'FREEZER_API_CONFIG_FILES' in log
    assert not (tmp_path / 'state').exists()


@pytest.mark.parametrize('value,works', [('noauth', True), ('', False),
                                         ('none', False)])
def test_wsgi_module_takes_the_strategy_from_the_environment(
        tmp_path, value, works):
    import subprocess
    import sys
    env = servers.clean_env(tmp_path, FREEZER_API_AUTH_STRATEGY=value)
    code = ('from freezer_api.cmd import wsgi; '
            'print(wsgi.application.__class__.__name__)')
    proc = subprocess.run([sys.executable, '-c', code], env=env,
                          capture_output=True, text=True, timeout=120,
                          check=False)
    assert (proc.returncode == 0) == works, proc.stderr
    if not works:
        assert 'ConfigurationError' in proc.stderr
        assert ('FREEZER_API_AUTH_STRATEGY' in proc.stderr.splitlines()[0])


def test_wsgi_module_freezes_what_it_built_at_start_up(tmp_path):
    """The loaded pipeline is out of the garbage collector's scans
    (``common.freeze_startup_objects``), with no garbage kept."""
    import subprocess
    import sys
    env = servers.clean_env(tmp_path, FREEZER_API_AUTH_STRATEGY='noauth')
    code = ('import gc; before = gc.get_freeze_count(); '
            'from freezer_api.cmd import wsgi; '
            'print(before, gc.get_freeze_count(), gc.get_count()[0])')
    proc = subprocess.run([sys.executable, '-c', code], env=env,
                          capture_output=True, text=True, timeout=120,
                          check=True)
    before, frozen, young = map(int, proc.stdout.splitlines()[-1].split())
    assert before == 0
    assert frozen > 10_000
    assert young < 100   # collected just before the freeze


def test_development_server_still_defaults_to_noauth(tmp_path, stop_later):
    server = servers.start_freezer_api(tmp_path)
    stop_later(server)
    resp = requests.get(server.url + '/v2/freezer/clients', timeout=10)
    assert resp.status_code == 200, resp.text


def test_wsgi_module_reads_config_from_environment(tmp_path, stop_later):
    conf = servers.write_config(tmp_path / 'from-env.conf',
                                f'sqlite:///{tmp_path}/env.sqlite')
    env = servers.clean_env(tmp_path,
                            FREEZER_API_CONFIG_FILES=str(conf))
    # NOTE: --config-file in the host's argv must not be parsed (upstream
    # bug §9.17); uwsgi would reject it anyway, so pass a harmless option.
    server = servers.start_uwsgi(tmp_path, env, extra=['--processes', '2'])
    stop_later(server)
    exercise(server.url)
    assert (tmp_path / 'env.sqlite').is_file()


def test_state_path_default_depends_on_the_user(monkeypatch, tmp_path):
    monkeypatch.delenv('FREEZER_API_STATE_PATH', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv('XDG_DATA_HOME', raising=False)
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    assert default.default_state_path() == str(
        tmp_path / '.local/share/freezer-api')
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    assert default.default_state_path() == '/var/lib/freezer-api'
    monkeypatch.setenv('FREEZER_API_STATE_PATH', '/srv/freezer')
    assert default.default_state_path() == '/srv/freezer'
