"""Bodies over the limit under uwsgi with several workers (issue 13.8).

The 413 must reach the client every time. When it went out before the
body was read, uwsgi closed the socket with unread data in it and the
client, still sending, often got a connection reset instead.
"""

import os
import socket

import pytest

from tests.fixtures import servers

MiB = 1024 * 1024
TRIES = 20


@pytest.fixture(params=['--http', '--http-socket'])
def uwsgi(request, tmp_path):
    """uwsgi with 4 workers, behind its HTTP router (--http) or speaking
    HTTP itself as the shipped uwsgi.ini does (--http-socket)."""
    config = servers.write_config(tmp_path / 'freezer-api.conf',
                                  f'sqlite:///{tmp_path}/big.sqlite')
    env = servers.clean_env(tmp_path, FREEZER_API_CONFIG_FILES=str(config))
    port = servers.free_port()
    argv = [os.path.join(servers.BIN, 'uwsgi'), request.param,
            f'127.0.0.1:{port}', '--need-app', '--master', '--processes',
            '4', '--module', 'freezer_api.cmd.wsgi:application',
            '--die-on-term', '--add-header', 'Connection: close']
    server = servers.Server(argv, f'http://127.0.0.1:{port}', env,
                            tmp_path / 'uwsgi.log').wait_ready()
    yield server
    server.stop()


def _send(url, method, path, body):
    """Send ``body`` as one request; return the status line, or the error
    the client saw instead (a reset while sending or reading)."""
    host, port = url.rsplit('//', 1)[1].split(':')
    head = (f'{method} {path} HTTP/1.1\r\nHost: {host}\r\n'
            f'X-User-Id: alice\r\nX-Project-Id: proj1\r\n'
            f'Content-Type: application/json\r\n'
            f'Content-Length: {len(body)}\r\nConnection: close\r\n\r\n')
    try:
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(head.encode() + body)
            answer = b''
            while b'\r\n' not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    return 'closed without an answer'
                answer += chunk
            return answer.split(b'\r\n', 1)[0].decode()
    except OSError as exc:
        return f'{type(exc).__name__}: {exc}'


@pytest.mark.parametrize('method,path,status', [
    ('POST', '/v2/proj1/jobs', 413), ('POST', '/v1/clients', 413),
    ('PATCH', '/v2/proj1/backups/b1', 413),
    # an answer that never looks at the body: it must arrive too
    ('POST', '/v2/proj1/backups/b1', 405)])
def test_a_10_mb_body_always_gets_its_answer(uwsgi, method, path, status):
    body = b'{"description": "' + b'x' * (10 * MiB) + b'"}'
    answers = [_send(uwsgi.url, method, path, body) for _ in range(TRIES)]
    wrong = [a for a in answers if f' {status} ' not in a]
    assert not wrong, f'{len(wrong)} of {TRIES}: {sorted(set(wrong))}'
