"""freezer-api under uwsgi: the shipped etc/freezer/uwsgi.ini and HTTPS."""

import os
import signal
import subprocess
import threading

import pytest
import requests

from tests.deploy.conftest import HEADERS, UWSGI, exercise, keep_alive_round
from tests.deploy.conftest import self_signed_certificate
from tests.deploy.conftest import start_shipped_uwsgi
from tests.fixtures import servers

APP_READY = "WSGI app 0 (mountpoint='') ready"


def uwsgi_help():
    return subprocess.run([UWSGI, '--help'], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          check=False).stdout


class Traffic(threading.Thread):
    """Requests in a loop, until stopped; records what went wrong."""

    def __init__(self, url, limit=20000):
        super().__init__(daemon=True)
        self.url = url
        self.limit = limit
        self.done = 0
        self.failures = []
        self._halt = threading.Event()

    def run(self):
        paths = ('/healthcheck', '/v1/clients/')
        while not self._halt.is_set() and self.done < self.limit:
            path = paths[self.done % 2]
            try:
                answer = requests.get(self.url + path, headers=HEADERS,
                                      timeout=60)
                if answer.status_code != 200:
                    self.failures.append(f'{path}: {answer.status_code} '
                                         f'{answer.text[:200]}')
            except requests.RequestException as ex:
                self.failures.append(f'{path}: {ex!r}')
            self.done += 1
            # NOTE: leave the CPU to the reloading workers.
            self._halt.wait(0.05)

    def finish(self):
        self._halt.set()
        self.join(timeout=120)
        assert not self.is_alive()


@pytest.fixture
def production_uwsgi(tmp_path, run_service):
    """uwsgi started with the shipped ini, placeholders set for the test."""
    database = tmp_path / 'uwsgi.sqlite'
    config = servers.write_config(tmp_path / 'freezer-api.conf',
                                  f'sqlite:///{database}')
    service = start_shipped_uwsgi(run_service, tmp_path, config)
    service.wait_ready()
    service.database = database
    return service


def test_production_ini_serves_reloads_and_stops(production_uwsgi):
    server = production_uwsgi
    versions = exercise(server.url)
    # The configuration named by the ini was used, not a default place.
    assert server.database.is_file()
    # The plain http socket closes each connection, and says so.
    assert versions.headers['Connection'] == 'close'
    # so clients that keep connections open are served.
    keep_alive_round(server.url)
    # Keystone-sized headers fit in buffer-size (uwsgi's default 4 KiB
    # would drop the request).
    big = requests.get(server.url + '/v1/clients/', timeout=30,
                       headers=dict(HEADERS, **{'X-Service-Token':
                                                'x' * 16000}))
    assert big.status_code == 200, big.text
    # A body over [api] max_request_body_size is answered, in JSON.
    huge = requests.post(server.url + '/v2/proj1/clients/', headers=HEADERS,
                         data=b'{"client_id": "' + b'x' * 3_000_000 + b'"}',
                         timeout=60)
    assert huge.status_code == 413
    assert huge.json()['title'] == 'Request Entity Too Large'
    log = server.log(tail=10 ** 6)
    assert 'spawned uWSGI worker 2' in log
    assert 'threads support enabled' in log
    assert 'multiple interpreter mode' not in log
    for trigger in ('reload', 'chain-reload'):
        assert f'{server.run_dir}/{trigger}, events will be triggered' in log
    master = int((server.run_dir / 'uwsgi.pid').read_text())
    assert master == server.process.pid
    server.wait_for_log(APP_READY, count=2)

    traffic = Traffic(server.url)
    traffic.start()
    try:
        # SIGHUP (systemctl reload): graceful reload of the whole instance.
        os.kill(master, signal.SIGHUP)
        server.wait_for_log('gracefully (RE)spawned uWSGI master process')
        server.wait_for_log(APP_READY, count=4)
        # The chain trigger file: one worker after the other.
        (server.run_dir / 'chain-reload').touch()
        server.wait_for_log('chain reloading complete')
    finally:
        traffic.finish()
    assert traffic.failures == []
    assert traffic.done > 0
    assert server.process.poll() is None
    assert int((server.run_dir / 'uwsgi.pid').read_text()) == master
    # Same data after the reloads.
    listed = requests.get(server.url + '/v1/clients/', headers=HEADERS,
                          timeout=30)
    assert [c['client']['client_id'] for c in listed.json()['clients']] == [
        'proj1_node1']

    # SIGTERM: graceful stop, pid file removed.
    assert server.stop(signal.SIGTERM) == 0
    assert 'goodbye to uWSGI' in server.log()
    assert not (server.run_dir / 'uwsgi.pid').exists()


def test_https_with_a_self_signed_certificate(tmp_path, run_service):
    assert '--https ' in uwsgi_help(), (
        'this uwsgi was built without SSL support: install libssl-dev, then '
        'rebuild it (pip install --no-cache-dir --force-reinstall uWSGI); '
        'tools/run-tests.sh does both')
    cert, key = self_signed_certificate(tmp_path)
    port = servers.free_port()
    url = f'https://127.0.0.1:{port}'
    # The seed's command line, with a real certificate.
    argv = [UWSGI, '--https', f'127.0.0.1:{port},{cert},{key}',
            '--need-app', '--master', '--module',
            'freezer_api.cmd.wsgi:application', '--die-on-term']
    # NOTE: no configuration file: the WSGI module serves without
    # authentication only when told so.
    server = run_service(argv, url, tmp_path / 'uwsgi.log',
                         servers.clean_env(
                             tmp_path, FREEZER_API_AUTH_STRATEGY='noauth'))
    server.wait_ready(verify=str(cert))
    versions = exercise(url, verify=str(cert))
    # The application knows it is behind TLS.
    hrefs = [link['href'] for version in versions.json()['versions']
             for link in version['links']]
    assert hrefs and all(h.startswith(url + '/') for h in hrefs), hrefs
    # Nothing but that certificate is trusted.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + '/', timeout=30)


def test_host_argv_never_reaches_the_configuration(tmp_path, run_service):
    """The hosting process's argv is not freezer-api's command line.

    Without FREEZER_API_* variables the standard places are searched
    (here ~/.freezer-api/freezer-api.conf), and only for freezer-api.conf:
    oslo.config would also take ~/.freezer-api/uwsgi.conf, named after
    argv[0].
    """
    home = tmp_path / '.freezer-api'
    home.mkdir()
    servers.write_config(home / 'freezer-api.conf',
                         f'sqlite:///{tmp_path}/good.sqlite')
    for name in ('bogus.conf', 'uwsgi.conf'):
        servers.write_config(home / name,
                             f'sqlite:///{tmp_path}/{name}.sqlite',
                             auth_strategy='keystone')
    port = servers.free_port()
    # --pyargv is what the application sees as sys.argv: had it parsed
    # them, requests would need a token and land in bogus.conf.sqlite.
    argv = [UWSGI, '--http-socket', f'127.0.0.1:{port}', '--need-app',
            '--master', '--module', 'freezer_api.cmd.wsgi:application',
            '--die-on-term', '--add-header', 'Connection: close',
            '--pyargv', f'--config-file {home}/bogus.conf --debug']
    server = run_service(argv, f'http://127.0.0.1:{port}',
                         tmp_path / 'uwsgi.log', servers.clean_env(tmp_path))
    server.wait_ready()
    exercise(server.url)
    assert sorted(p.name for p in tmp_path.glob('*.sqlite')) == [
        'good.sqlite']
