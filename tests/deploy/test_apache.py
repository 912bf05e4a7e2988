"""freezer-api under Apache httpd and mod_wsgi, from the shipped site file.

A private Apache (its own ServerRoot, pid file and loopback port, started
in the foreground) includes etc/freezer/apache2-freezer-api.conf with its
placeholders filled in. mod_wsgi comes from PyPI, built for the Python of
a virtualenv that holds a normal (not editable) install of this checkout,
so the test also proves that ``freezer-api-wsgi`` is installed by pip.

As root, Apache and the mod_wsgi daemon processes run as ``www-data`` (or
``nobody``), which must be able to read that Python: the virtualenv lives
in /tmp and is made from the test's own interpreter when that user can
run it, else from the distribution's /usr/bin/python3 (a pyenv Python
under /root is out of its reach). The mod_wsgi wheel and a virtualenv with
freezer-api's requirements are built once, under
``~/.cache/freezer-api/mod_wsgi/<key>`` (``FREEZER_TEST_CACHE_DIR`` moves
it); each run installs this checkout into a hard-linked copy of that
virtualenv.

Needs ``apache2`` and ``apache2-dev`` (apxs), and the headers of that
Python (``python3-dev``); tools/run-tests.sh installs them as root. Without
them the test fails and says what is missing.
"""

import configparser
import glob
import hashlib
import json
import grp
import os
import pathlib
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest
import requests

from tests.deploy.conftest import HEADERS, REPO, exercise, keep_alive_round
from tests.fixtures import servers
from tests.fixtures import venvs

SITE_TEMPLATE = os.path.join(REPO, 'etc', 'freezer',
                             'apache2-freezer-api.conf')
MOD_WSGI_REQUIREMENT = 'mod_wsgi==6.1.1'
# What pip needs to build freezer-api without build isolation.
BUILD_REQUIREMENT = 'setuptools>=70.1'
SEARCH_PATH = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin',
                               '/usr/local/sbin', '/sbin'])
PLACEHOLDER = re.compile(r'%[A-Z_]+%')
# NOTE: what a Python must offer to host freezer-api in mod_wsgi.
PYTHON_CHECK = textwrap.dedent('''\
    import json, os, sqlite3, ssl, sys, sysconfig
    print(json.dumps({
        'version': '%d.%d.%d' % sys.version_info[:3],
        'shared': sysconfig.get_config_var('Py_ENABLE_SHARED'),
        'headers': os.path.isfile(os.path.join(
            sysconfig.get_paths()['include'], 'Python.h')),
    }))
''')


def _fail(message):
    pytest.fail(message, pytrace=False)


def _run(argv, **kwargs):
    kwargs.setdefault('timeout', 900)
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL, check=False, **kwargs)


def _apxs():
    apxs = shutil.which('apxs', path=SEARCH_PATH) or shutil.which(
        'apxs2', path=SEARCH_PATH)
    if not apxs:
        _fail('Apache httpd and its apxs are needed: apt-get install apache2 '
              'apache2-dev (tools/run-tests.sh installs them as root).')
    return apxs


def _apxs_query(apxs, name):
    return _run([apxs, '-q', name]).stdout.strip()


def _worker():
    """(user, group, uid, gid) of Apache's children."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
    else:
        for name in ('www-data', 'apache', 'nobody'):
            try:
                entry = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        else:
            _fail('Running as root, Apache needs an unprivileged user '
                  '(www-data, apache or nobody) and none exists.')
    return (entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name,
            entry.pw_uid, entry.pw_gid)


def _as_worker(worker):
    if os.geteuid() != 0:
        return {}
    return {'user': worker[2], 'group': worker[3], 'extra_groups': []}


def _python_for(worker):
    """An interpreter the worker can run, with headers and libpython."""
    base = os.path.realpath(getattr(sys, '_base_executable', sys.executable))
    tried = []
    for python in dict.fromkeys([base, '/usr/bin/python3']):
        if not os.path.isfile(python):
            continue
        try:
            proc = _run([python, '-c', PYTHON_CHECK], cwd='/',
                        env={'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'},
                        timeout=60, **_as_worker(worker))
        except OSError as ex:
            tried.append(f'{python}: {ex}')
            continue
        facts = None
        if proc.returncode == 0:
            facts = json.loads(proc.stdout.strip().splitlines()[-1])
            if facts['shared'] and facts['headers']:
                return python, facts['version']
        tried.append(f'{python}: {facts or proc.stdout.strip()[-300:]}')
    _fail(f'No Python that user {worker[0]} can run and that mod_wsgi can '
          'be built for (shared libpython and headers): '
          + '; '.join(tried) + '. Install python3-dev.')


def _requirements():
    """freezer-api's own requirements, from setup.cfg."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, 'setup.cfg'))
    return [line.strip() for line in
            parser['options']['install_requires'].splitlines()
            if line.strip()]


def _pip(python, *args, **env):
    proc = _run([sys.executable, '-m', 'pip', '--python', python, *args,
                 '-q', '--disable-pip-version-check'],
                env=dict(os.environ, PIP_NO_INPUT='1', **env))
    if proc.returncode != 0:
        _fail(f'pip {" ".join(args)} failed for {python}:\n'
              f'{proc.stdout[-3000:]}')


def _base_virtualenv(python, version, apxs):
    """A cached virtualenv with mod_wsgi and freezer-api's requirements.

    One per interpreter and apxs, rebuilt when the requirements change (a
    stamp file names them); freezer-api itself goes into a copy of it.
    """
    requirements = [BUILD_REQUIREMENT, *_requirements()]
    wanted = '\n'.join([MOD_WSGI_REQUIREMENT, *requirements]) + '\n'
    key = hashlib.sha256(f'{python}|{version}|{apxs}'.encode()).hexdigest()
    folder = os.path.join(venvs.cache_root(), 'mod_wsgi', key[:16])
    wheels = os.path.join(folder, 'wheels-' + re.sub(
        r'[^\w.]+', '-', MOD_WSGI_REQUIREMENT))

    def build(venv):
        if not glob.glob(os.path.join(wheels, '*.whl')):
            # NOTE: --no-cache-dir: pip's wheel cache does not tell two
            # CPython 3.x builds apart, and each links its own libpython.
            _pip(python, 'wheel', '--no-deps', '--no-cache-dir', '-w',
                 wheels, MOD_WSGI_REQUIREMENT, APXS=apxs)
        venvs.run([python, '-m', 'venv', '--without-pip', venv],
                  f'Could not create a virtualenv with {python}')
        wheel, = glob.glob(os.path.join(wheels, '*.whl'))
        _pip(os.path.join(venv, 'bin', 'python'), 'install', wheel,
             *requirements)
        _readable(venv)

    return venvs.cached_virtualenv(os.path.join(folder, 'venv'), wanted,
                                   build)


def _readable(top):
    """Let everyone read ``top`` whatever the umask: Apache's user must."""
    for folder, dirs, files in os.walk(top):
        os.chmod(folder, os.stat(folder).st_mode | 0o555)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _install(base, venv, workdir):
    """A copy of ``base`` holding a normal install of this checkout."""
    shutil.copytree(base, venv, symlinks=True, copy_function=_link_or_copy)
    source = os.path.join(workdir, 'source')
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', '.tox', 'build', 'dist', '*.egg-info', 'tests',
        '__pycache__', '.pytest_cache', '*.sqlite', '*.log'))
    _pip(os.path.join(venv, 'bin', 'python'), 'install', '--no-deps',
         '--no-build-isolation', source)
    shutil.rmtree(source)
    _readable(venv)


@pytest.fixture(scope='module')
def apache_runtime():
    """Apache, its modules, the worker user and a virtualenv for it."""
    apxs = _apxs()
    httpd = os.path.join(_apxs_query(apxs, 'SBINDIR'),
                         _apxs_query(apxs, 'TARGET'))
    if not os.access(httpd, os.X_OK):
        _fail(f'apxs names {httpd}, which is not there: apt-get install '
              'apache2')
    worker = _worker()
    python, version = _python_for(worker)
    base = _base_virtualenv(python, version, apxs)
    workdir = tempfile.mkdtemp(prefix='freezer-apache-',
                               dir='/tmp' if os.geteuid() == 0 else None)
    try:
        os.chmod(workdir, 0o755)
        venv = os.path.join(workdir, 'venv')
        _install(base, venv, workdir)
        modules = glob.glob(os.path.join(
            venv, 'lib', 'python*', 'site-packages', 'mod_wsgi', 'server',
            'mod_wsgi*.so'))
        assert len(modules) == 1, modules
        yield {'httpd': httpd, 'modules': _apxs_query(apxs, 'LIBEXECDIR'),
               'worker': worker, 'venv': venv, 'mod_wsgi': modules[0],
               'workdir': workdir}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _site(runtime, root, port, config):
    user, group = runtime['worker'][:2]
    values = {
        'LISTEN': f'127.0.0.1:{port}',
        'PORT': str(port),
        'USER': user,
        'GROUP': group,
        'VIRTUALENV': runtime['venv'],
        'WSGI_DIR': os.path.join(runtime['venv'], 'bin'),
        'CONFIG_FILES': str(config),
        'LOG_DIR': str(root / 'logs'),
    }
    with open(SITE_TEMPLATE) as handle:
        text = handle.read()
    assert set(PLACEHOLDER.findall(text)) == {f'%{k}%' for k in values}
    for name, value in values.items():
        text = text.replace(f'%{name}%', value)
    return text


def _httpd_conf(runtime, root):
    modules = runtime['modules']
    user, group = runtime['worker'][:2]
    account = f'User {user}\nGroup {group}\n' if os.geteuid() == 0 else ''
    return textwrap.dedent(f'''\
        ServerRoot "{root}"
        ServerName 127.0.0.1
        PidFile "{root}/run/httpd.pid"
        DefaultRuntimeDir "{root}/run"
        Mutex file:{root}/run default
        LoadModule mpm_event_module "{modules}/mod_mpm_event.so"
        <IfModule !unixd_module>
            LoadModule unixd_module "{modules}/mod_unixd.so"
        </IfModule>
        LoadModule authz_core_module "{modules}/mod_authz_core.so"
        LoadModule env_module "{modules}/mod_env.so"
        LoadModule wsgi_module "{runtime['mod_wsgi']}"
        ErrorLog "{root}/logs/error.log"
        LogLevel info
        # NOTE: the site logs in the "combined" format of the distribution.
        LogFormat "%h %l %u %t \\"%r\\" %>s %b" combined
        WSGISocketPrefix "{root}/run/wsgi"
        WSGIRestrictEmbedded On
        Include "{root}/site.conf"
        ''') + account


def _daemon_processes(pgid):
    """{pid: uid} of the mod_wsgi daemons in the process group."""
    found = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/cmdline', 'rb') as handle:
                cmdline = handle.read()
            with open(f'/proc/{name}/status') as handle:
                status = handle.read()
        except OSError:
            continue
        try:
            if os.getpgid(int(name)) != pgid or \
                    not cmdline.startswith(b'(wsgi:freezer-api'):
                continue
        except ProcessLookupError:
            continue
        found[int(name)] = int(re.search(r'^Uid:\s+(\d+)', status,
                                         re.M).group(1))
    return found


def test_apache_mod_wsgi_serves_the_shipped_site(apache_runtime,
                                                 run_service):
    runtime = apache_runtime
    # NOTE: not tmp_path, which only root may enter.
    root = pathlib.Path(tempfile.mkdtemp(dir=runtime['workdir']))
    os.chmod(root, 0o755)
    for folder in ('run', 'logs', 'state'):
        (root / folder).mkdir()
        os.chmod(root / folder, 0o755)
    uid, gid = runtime['worker'][2:]
    os.chown(root / 'state', uid, gid)
    database = root / 'state' / 'freezer.sqlite'
    config = servers.write_config(root / 'freezer-api.conf',
                                  f'sqlite:///{database}')
    os.chmod(config, 0o644)
    port = servers.free_port()
    (root / 'site.conf').write_text(_site(runtime, root, port, config))
    httpd_conf = root / 'httpd.conf'
    httpd_conf.write_text(_httpd_conf(runtime, root))
    # NOTE: no FREEZER_API_* variable: the site's SetEnv names the file.
    env = {'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'LANG': 'C'}
    check = _run([runtime['httpd'], '-t', '-f', str(httpd_conf)], env=env)
    assert check.returncode == 0, check.stdout

    url = f'http://127.0.0.1:{port}'
    apache = run_service([runtime['httpd'], '-f', str(httpd_conf),
                          '-DFOREGROUND'], url, root / 'console.log', env)
    apache.wait_ready()

    exercise(url)
    # Apache keeps connections open for clients that reuse them.
    keep_alive_round(url)
    # The application used the file named by the site's SetEnv.
    assert database.is_file()
    assert database.stat().st_uid == uid

    # Up to [api] max_request_body_size freezer-api answers, in JSON;
    # over LimitRequestBody Apache refuses before Python sees the body.
    bodies = {
        1_500_000: 'application/json',
        3 * 1024 * 1024: 'text/html',
    }
    for size, content_type in bodies.items():
        answer = requests.post(
            url + '/v2/proj1/clients/', headers=HEADERS, timeout=60,
            data=b'{"client_id": "' + b'x' * size + b'"}')
        assert answer.status_code == 413, (size, answer.text[:300])
        assert answer.headers['Content-Type'].startswith(content_type), (
            size, answer.headers)
    error_log = (root / 'logs' / 'freezer-api.log').read_text()
    assert 'larger than the configured limit of 2097152' in error_log

    # The Python code runs in the two daemon processes, as the site's user.
    daemons = _daemon_processes(apache.pgid)
    assert len(daemons) == 2, daemons
    assert set(daemons.values()) == {uid}
    access_log = (root / 'logs' / 'freezer-api_access.log').read_text()
    assert '"POST /v2/proj1/clients/ HTTP/1.1" 201' in access_log

    assert apache.stop(signal.SIGTERM) == 0, apache.log()
    assert not apache.group_alive()
    assert not (root / 'run' / 'httpd.pid').exists()
