"""Helpers of the deployment tests: real servers in their own sessions.

``run_service`` (function fixture) starts a command in a new session and
stops it, and everything it forked, when the test ends, passed or failed.
"""

import grp
import http.client
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import time
import urllib.parse

import pytest
import requests

from tests.fixtures import servers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HEADERS = {'X-User-Id': 'alice', 'X-Project-Id': 'proj1'}
UWSGI = os.path.join(servers.BIN, 'uwsgi')
UWSGI_INI = os.path.join(REPO, 'etc', 'freezer', 'uwsgi.ini')


class Service:
    """A server process group; ``url`` is where it answers HTTP."""

    def __init__(self, argv, url, log_path, env, **popen):
        self.argv = argv
        self.url = url
        self.log_path = log_path
        with open(log_path, 'ab') as log:
            self.process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, **popen)
        self.pgid = self.process.pid

    def log(self, tail=6000):
        with open(self.log_path, 'rb') as handle:
            return handle.read().decode(errors='replace')[-tail:]

    def wait_ready(self, path='/', timeout=120, **kwargs):
        """Wait until ``path`` answers at all (any status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f'{self.argv[0]} exited with {self.process.returncode}:'
                    f'\n{self.log()}')
            try:
                requests.get(self.url + path, timeout=30, **kwargs)
                return self
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        raise AssertionError(f'{self.argv[0]} did not answer on {self.url}:'
                             f'\n{self.log()}')

    def wait_for_log(self, text, count=1, timeout=120):
        """Wait until ``text`` occurs ``count`` times in the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, 'rb') as handle:
                if handle.read().decode(errors='replace').count(text) >= count:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f'{text!r} x{count} not in the log:\n'
                             f'{self.log()}')

    def group_alive(self):
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stop the leader with ``sig``; return its exit status.

        Whatever is left of the process group afterwards is killed.
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.group_alive():
            os.killpg(self.pgid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while self.group_alive() and time.monotonic() < deadline:
                time.sleep(0.1)
        if self.process.poll() is None:
            self.process.wait()
        return self.process.returncode


@pytest.fixture
def run_service():
    started = []

    def start(argv, url, log_path, env, **popen):
        service = Service(argv, url, log_path, env, **popen)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def start_shipped_uwsgi(run_service, tmp_path, config, **placeholders):
    """uwsgi with the shipped ``uwsgi.ini``, its placeholders set for a
    test (two processes; ``placeholders`` adds or overrides some, as
    ``freezer_threads='2'``) and the service's ``run_dir`` under
    ``tmp_path``; not waited for."""
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    port = servers.free_port()
    values = {
        'freezer-http': f'127.0.0.1:{port}',
        'freezer-processes': '2',
        'freezer-user': pwd.getpwuid(os.geteuid()).pw_name,
        'freezer-group': grp.getgrgid(os.getegid()).gr_name,
        'freezer-config-files': str(config),
        'freezer-run-dir': str(run_dir),
    }
    values.update({name.replace('_', '-'): value
                   for name, value in placeholders.items()})
    argv = [UWSGI]
    for name, value in values.items():
        argv += ['--set-ph', f'{name}={value}']
    argv += ['--ini', UWSGI_INI]
    # NOTE: no FREEZER_API_* variable here: the ini's env line names the
    # configuration file.
    service = run_service(argv, f'http://127.0.0.1:{port}',
                          tmp_path / 'uwsgi.log', servers.clean_env(tmp_path))
    service.run_dir = run_dir
    return service


def exercise(url, **kwargs):
    """Versions, then a client created through v2 and listed through v1."""
    versions = requests.get(url + '/', timeout=30, **kwargs)
    assert versions.status_code == 300, versions.text
    assert [v['id'] for v in versions.json()['versions']] == ['v2', 'v1']
    health = requests.get(url + '/healthcheck', timeout=30, **kwargs)
    assert health.status_code == 200, health.text
    created = requests.post(url + '/v2/proj1/clients/', headers=HEADERS,
                            json={'client_id': 'proj1_node1'}, timeout=30,
                            **kwargs)
    assert created.status_code == 201, created.text
    listed = requests.get(url + '/v1/clients/', headers=HEADERS, timeout=30,
                          **kwargs)
    assert listed.status_code == 200, listed.text
    assert [c['client']['client_id'] for c in listed.json()['clients']] == [
        'proj1_node1']
    return versions


def noauth_step(number):
    """Reads and writes in turn: versions, a client created, read, listed
    (v1), deleted."""
    client_id = f'proj1_keepalive-{number // 5}'
    return [('GET', '/', None, 300),
            ('POST', '/v2/proj1/clients/', {'client_id': client_id}, 201),
            ('GET', f'/v2/proj1/clients/{client_id}', None, 200),
            ('GET', '/v1/clients/', None, 200),
            ('DELETE', f'/v2/proj1/clients/{client_id}', None, 204),
            ][number % 5]


def keystone_step(number):
    """Without a token: versions, health, and a refused API call."""
    return [('GET', '/', None, 300),
            ('GET', '/healthcheck', None, 200),
            ('GET', '/v2/proj1/clients/', None, 401)][number % 3]


def keep_alive_round(url, count=200, step=noauth_step, **kwargs):
    """``count`` sequential requests over one ``requests.Session``.

    What clients that reuse connections (keystoneauth, python-freezerclient)
    do: a server that closes a connection without saying so (no
    ``Connection: close``, not HTTP/1.0) makes the next request on it fail
    with "connection reset" or "remote end closed connection". ``step(n)``
    is the n-th request: (method, path, JSON body, expected status). Any
    error or unexpected status fails.

    As that failure depends on timing, ``second_request_on_one_connection``
    first checks the same thing deterministically.
    """
    second_request_on_one_connection(url, verify=kwargs.get('verify'))
    failures = []
    answered = 0
    with requests.Session() as session:
        for number in range(count):
            method, path, body, status = step(number)
            try:
                answer = session.request(method, url + path, json=body,
                                         headers=HEADERS, timeout=60,
                                         **kwargs)
            except requests.RequestException as error:
                failures.append(f'#{number} {method} {path}: {error!r}')
                continue
            answered += 1
            if answer.status_code != status:
                failures.append(f'#{number} {method} {path}: '
                                f'{answer.status_code} {answer.text[:200]}')
    assert not failures, (f'{len(failures)} of {count} requests over one '
                          f'session failed:\n' + '\n'.join(failures[:20]))
    assert answered == count


def second_request_on_one_connection(url, verify=None):
    """A first answer that does not say ``Connection: close`` keeps the
    connection open: a second request on it is answered."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == 'https':
        context = ssl.create_default_context(
            cafile=verify if isinstance(verify, str) else None)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port,
                                           timeout=60, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                          timeout=60)
    try:
        conn.request('GET', '/healthcheck')
        first = conn.getresponse()
        first.read()
        assert first.status == 200, first.status
        says_close = (first.version == 10 or 'close' in (
            first.getheader('Connection') or '').lower())
        if says_close:
            return
        # NOTE: http.client reuses the connection it was told is open.
        try:
            conn.request('GET', '/healthcheck')
            second = conn.getresponse()
            second.read()
        except (OSError, http.client.HTTPException) as error:
            raise AssertionError(
                f'the server closed a connection without saying so: the '
                f'first answer (HTTP/{first.version / 10:.1f}, headers '
                f'{dict(first.getheaders())}) kept it open, the second '
                f'request on it failed: {error!r}') from None
        assert second.status == 200, second.status
    finally:
        conn.close()


def self_signed_certificate(folder):
    """(certificate, key) paths of a fresh self-signed certificate for
    127.0.0.1, made in ``folder`` with the openssl command."""
    openssl = shutil.which('openssl')
    assert openssl, 'the openssl command is needed (apt-get install openssl)'
    cert, key = folder / 'freezer.crt', folder / 'freezer.key'
    subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                    '-days', '2', '-subj', '/CN=127.0.0.1',
                    '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', str(key), '-out', str(cert)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return cert, key
