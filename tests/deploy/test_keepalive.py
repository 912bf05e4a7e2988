"""Every command line README.rst and doc/deployment.rst give serves
keep-alive clients: 200 sequential requests over one ``requests.Session``.

The lines are read from the documents themselves (the address, certificate
and configuration file swapped for the test's), so a line changed in the
docs is the line tested. The shipped uwsgi.ini, the Apache site and the
DevStack uwsgi configuration get the same round in test_uwsgi.py,
test_apache.py and test_devstack.py.

uwsgi's http and https routers close a client connection after each
response; unless the answer says ``Connection: close``, an HTTP/1.1 client
sends its next request on that connection and gets "connection reset".
"""

import os
import shlex
import signal

import pytest

from tests.deploy.conftest import REPO, keep_alive_round
from tests.deploy.conftest import self_signed_certificate
from tests.fixtures import servers

README = os.path.join(REPO, 'README.rst')
DEPLOYMENT = os.path.join(REPO, 'doc', 'deployment.rst')


def documented_commands(path, program):
    """The commands of the literal blocks of ``path`` run by ``program``,
    backslash continuations joined, as argument lists."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    commands = []
    current = None
    for line in lines:
        text = line.strip()
        if current is not None:
            current += ' ' + text.rstrip('\\').strip()
            if not text.endswith('\\'):
                commands.append(current)
                current = None
        elif line.startswith('    ') and text.split(' ', 1)[0] == program:
            if text.endswith('\\'):
                current = text.rstrip('\\').strip()
            else:
                commands.append(text)
    return [shlex.split(command) for command in commands]


def one_liners(path, option):
    """The documented ``uwsgi <option> ...`` command lines."""
    return [argv for argv in documented_commands(path, 'uwsgi')
            if option in argv]


def localize(argv, replacements):
    """``argv`` with the documented values replaced for the test."""
    found = []
    result = []
    for arg in argv:
        for documented, actual in replacements.items():
            if documented in arg:
                arg = arg.replace(documented, actual)
                found.append(documented)
        result.append(arg)
    return result, found


def start(run_service, tmp_path, argv, url, **ready):
    config = servers.write_config(tmp_path / 'freezer-api.conf',
                                  f'sqlite:///{tmp_path}/freezer.sqlite')
    # NOTE: the one-liners name no configuration; the environment does,
    # with auth_strategy = noauth written out.
    env = servers.clean_env(tmp_path, FREEZER_API_CONFIG_FILES=str(config))
    program = os.path.join(servers.BIN, argv[0])
    service = run_service([program, *argv[1:]], url, tmp_path / 'server.log',
                          env)
    service.wait_ready(**ready)
    return service


def stop(service):
    # NOTE: SIGINT: without --die-on-term, uwsgi reloads on SIGTERM.
    service.stop(signal.SIGINT)


@pytest.mark.parametrize('document', [README, DEPLOYMENT],
                         ids=['README', 'deployment'])
def test_uwsgi_http_one_liner(document, tmp_path, run_service):
    commands = one_liners(document, '--http')
    assert len(commands) == 1, commands
    port = servers.free_port()
    argv, found = localize(commands[0], {':9090': f'127.0.0.1:{port}'})
    assert found == [':9090'], commands[0]
    url = f'http://127.0.0.1:{port}'
    service = start(run_service, tmp_path, argv, url)
    try:
        keep_alive_round(url)
    finally:
        stop(service)


def test_uwsgi_https_one_liner(tmp_path, run_service):
    commands = one_liners(DEPLOYMENT, '--https')
    assert len(commands) == 1, commands
    cert, key = self_signed_certificate(tmp_path)
    port = servers.free_port()
    argv, found = localize(commands[0], {
        ':9090,freezer.crt,freezer.key': f'127.0.0.1:{port},{cert},{key}'})
    assert found, commands[0]
    url = f'https://127.0.0.1:{port}'
    service = start(run_service, tmp_path, argv, url, verify=str(cert))
    try:
        keep_alive_round(url, verify=str(cert))
    finally:
        stop(service)


def test_freezer_api_command(tmp_path, run_service):
    commands = documented_commands(DEPLOYMENT, 'freezer-api')
    assert len(commands) == 1, commands
    port = servers.free_port()
    config = servers.write_config(tmp_path / 'freezer-api.conf',
                                  f'sqlite:///{tmp_path}/freezer.sqlite',
                                  port=port)
    argv, found = localize(commands[0], {
        '/etc/freezer/freezer-api.conf': str(config)})
    assert found, commands[0]
    url = f'http://127.0.0.1:{port}'
    service = run_service([os.path.join(servers.BIN, argv[0]), *argv[1:]],
                          url, tmp_path / 'server.log',
                          servers.clean_env(tmp_path))
    service.wait_ready()
    keep_alive_round(url)


def test_every_documented_command_line_is_tested():
    """A new way to run the service in the docs needs its keep-alive test
    (here, or in test_uwsgi, test_apache, test_devstack)."""
    tested = {
        README: {'uwsgi --http', 'uwsgi --ini'},
        DEPLOYMENT: {'uwsgi --http', 'uwsgi --https', 'uwsgi --ini',
                     'uwsgi --set-ph', 'freezer-api --config-file'},
    }
    for path, expected in tested.items():
        seen = set()
        for program in ('uwsgi', 'freezer-api'):
            for argv in documented_commands(path, program):
                seen.add(' '.join(argv[:2]))
        assert seen and seen <= expected, (path, seen - expected)
