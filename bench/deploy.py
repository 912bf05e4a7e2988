"""Both services, deployed alike: uwsgi on loopback over the same store.

Each side runs under its own uwsgi binary (from its own virtualenv) with the
same options (``UWSGI_OPTIONS``): a master, N processes of T threads, apps
loaded in each worker, HTTP served by the workers themselves with one
request per connection, request logging off.

Identity: neither side validates tokens. Ours runs ``auth_strategy =
noauth`` and reads ``X-User-Id``/``X-Project-Id``/``X-Roles``; upstream runs
the pipeline of its shipped ``freezer-paste.ini`` with ``authtoken`` left
out (``UPSTREAM_PASTE``), so its ``context`` filter takes the same headers
(plus ``X-Identity-Status: Confirmed``, which keystonemiddleware would have
set). Every request of the benchmark carries all of them (``HEADERS``).
"""

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OURS_VENV = os.path.dirname(os.path.dirname(sys.executable))
UPSTREAM_VERSION = '18.0.0'

PROJECT = 'benchproject'
USER = 'bench-user'
HEADERS = {
    'X-User-Id': USER,
    'X-User-Name': 'bench',
    'X-Project-Id': PROJECT,
    'X-Tenant-Id': PROJECT,
    'X-Roles': 'member,reader',
    'X-Identity-Status': 'Confirmed',
    'Content-Type': 'application/json',
    'Accept': 'application/json',
}

UWSGI_OPTIONS = [
    '--master', '--need-app', '--die-on-term', '--lazy-apps',
    '--single-interpreter', '--thunder-lock', '--buffer-size', '65535',
    '--add-header', 'Connection: close', '--disable-logging',
    '--listen', '128',
]

# Upstream's own pipeline (its etc/freezer/freezer-paste.ini) without
# keystonemiddleware's authtoken: identity comes from the headers above.
UPSTREAM_PASTE = """\
[app:api_versions]
paste.app_factory = freezer_api.api.versions:api_versions

[app:appv1]
paste.app_factory = freezer_api.service:freezer_appv1_factory

[app:appv2]
paste.app_factory = freezer_api.service:freezer_appv2_factory

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory
backends = disable_by_file
disable_by_file_path = /etc/freezer/healthcheck_disable

[filter:context]
paste.filter_factory = {context_factory}

[filter:versionsNegotiator]
paste.filter_factory = freezer_api.api.versions:VersionNegotiator.factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory

[composite:main]
use = egg:Paste#urlmap
/healthcheck = healthcheck
/ = api

[pipeline:api]
pipeline = http_proxy_to_wsgi versionsNegotiator context backupapp

[composite:backupapp]
paste.composite_factory = freezer_api.service:root_app_factory
/: api_versions
/v1: appv1
/v2: appv2
""".format(context_factory=(
    'freezer_api.api.common.middleware:ContextMiddleware.factory'))


def cache_dir():
    path = os.environ.get('FREEZER_BENCH_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'freezer-api', 'bench')
    os.makedirs(path, exist_ok=True)
    return path


def upstream_venv(log=print):
    """Return the virtualenv of upstream freezer-api, built once."""
    venv = os.path.join(cache_dir(), f'upstream-{UPSTREAM_VERSION}')
    marker = os.path.join(venv, '.complete')
    # NOTE: one build at a time (the test suite's workers share the cache)
    with open(venv + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker):
            return venv
        log(f'building {venv} (freezer-api=={UPSTREAM_VERSION} from PyPI)')
        subprocess.run([sys.executable, '-m', 'venv', '--clear', venv],
                       check=True)
        subprocess.run([os.path.join(venv, 'bin', 'pip'), 'install', '-q',
                        f'freezer-api=={UPSTREAM_VERSION}', 'uwsgi',
                        'psycopg2-binary'], check=True)
        with open(marker, 'w') as handle:
            handle.write('ok\n')
    return venv


def _children(pid):
    kids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _cpu_ticks(pid):
    try:
        with open(f'/proc/{pid}/stat') as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0
    # utime, stime (fields 14 and 15 of stat(5), counted after the name).
    return int(fields[11]) + int(fields[12])


def elasticsearch_pids():
    """The Elasticsearch processes of this machine (a bench's node shares
    it, and its CPU counts with the servers')."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as handle:
                if b'org.elasticsearch.bootstrap' in handle.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def cpu_seconds(pids):
    """CPU seconds used so far by the processes ``pids``."""
    return sum(_cpu_ticks(pid) for pid in pids) / TICK


def _rss_kib(pid):
    try:
        with open(f'/proc/{pid}/status') as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


TICK = os.sysconf('SC_CLK_TCK')


class Service:
    """One uwsgi master and its workers."""

    def __init__(self, name, argv, env, port, log_path):
        self.name = name
        self.port = port
        self.url = f'http://127.0.0.1:{port}'
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self.process = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=os.path.dirname(log_path))

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'{self.name} exited:\n{self.tail()}')
            try:
                answer = requests.get(self.url + '/healthcheck', timeout=5)
                answer.raise_for_status()
                return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f'{self.name} did not answer:\n{self.tail()}')

    def tail(self, size=4000):
        self._log.flush()
        with open(self.log_path, 'rb') as handle:
            return handle.read().decode(errors='replace')[-size:]

    def workers(self):
        return _children(self.process.pid)

    def cpu_seconds(self):
        return cpu_seconds([self.process.pid, *self.workers()])

    def worker_rss_mib(self):
        """RSS of each worker, in MiB."""
        return [_rss_kib(pid) / 1024.0 for pid in self.workers()]

    def stop(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self._log.closed:
            self._log.close()


def _uwsgi_argv(venv, port, processes, threads):
    return [os.path.join(venv, 'bin', 'uwsgi'),
            '--http-socket', f'127.0.0.1:{port}',
            '--virtualenv', venv,
            '--processes', str(processes), '--threads', str(threads),
            *UWSGI_OPTIONS]


def _env(workdir, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('FREEZER_API_', 'PYTHON', 'VIRTUAL_ENV'))}
    env.update(HOME=workdir, LANG='C.UTF-8')
    env.update(extra)
    return env


def start_ours(workdir, port, store, processes=2, threads=2, name='ours',
               extra_conf='', pythonpath=None):
    """``store`` is a dict: ``connection`` (SQL URL) or ``es_hosts`` and
    ``es_index``; ``extra_conf`` is appended to the configuration file;
    ``pythonpath``: a source tree of freezer_api served (and whose
    freezer-manage makes the store) instead of the installed one."""
    conf = os.path.join(workdir, f'{name}.conf')
    text = textwrap.dedent(f"""\
        [DEFAULT]
        auth_strategy = noauth
        state_path = {workdir}
        """)
    if 'es_hosts' in store:
        text += textwrap.dedent(f"""\
            [storage]
            driver = elasticsearch

            [elasticsearch]
            hosts = {store['es_hosts']}
            index = {store['es_index']}
            """)
        # the [elasticsearch] refresh mode to compare, when not the default
        if os.environ.get('FREEZER_BENCH_ES_REFRESH'):
            text += f"refresh = {os.environ['FREEZER_BENCH_ES_REFRESH']}\n"
    else:
        text += f"[database]\nconnection = {store['connection']}\n"
    text += textwrap.dedent(extra_conf)
    with open(conf, 'w') as handle:
        handle.write(text)
    tree = {} if pythonpath is None else {'PYTHONPATH': pythonpath}
    subprocess.run([os.path.join(OURS_VENV, 'bin', 'freezer-manage'),
                    '--config-file', conf, 'db', 'sync'],
                   env=_env(workdir, **tree), check=True,
                   capture_output=True, cwd=workdir)
    argv = _uwsgi_argv(OURS_VENV, port, processes, threads) + [
        '--module', 'freezer_api.cmd.wsgi:application']
    if pythonpath is not None:
        argv += ['--pythonpath', pythonpath]
    env = _env(workdir, FREEZER_API_CONFIG_FILES=conf)
    return _serve(name, argv, env, port, workdir)


def _serve(name, argv, env, port, workdir):
    """Start a uwsgi ``Service`` and wait until it answers."""
    service = Service(name, argv, env, port,
                      os.path.join(workdir, f'{name}.log'))
    try:
        return service.wait_ready()
    except BaseException:
        service.stop()
        raise


def upstream_connection(url):
    """Upstream (oslo.db) wants psycopg2 for PostgreSQL."""
    if url.startswith('postgresql+psycopg://'):
        return 'postgresql+psycopg2://' + url[len('postgresql+psycopg://'):]
    return url


def start_upstream(workdir, port, connection, processes=2, threads=2,
                   name='upstream', venv=None):
    venv = venv or upstream_venv()
    paste = os.path.join(workdir, f'{name}-paste.ini')
    with open(paste, 'w') as handle:
        handle.write(UPSTREAM_PASTE)
    conf = os.path.join(workdir, f'{name}.conf')
    with open(conf, 'w') as handle:
        handle.write(textwrap.dedent(f"""\
            [DEFAULT]
            enable_v1_api = false
            debug = false
            use_stderr = true

            [storage]
            backend = sqlalchemy
            driver = sqlalchemy

            [database]
            connection = {upstream_connection(connection)}

            [paste_deploy]
            config_file = {paste}
            """))
    env = _env(workdir)
    subprocess.run([os.path.join(venv, 'bin', 'freezer-manage'),
                    '--config-file', conf, 'db', 'sync'],
                   env=env, check=True, capture_output=True, cwd=workdir)
    argv = _uwsgi_argv(venv, port, processes, threads) + [
        '--module', 'freezer_api.wsgi:application',
        '--pyargv', f'--config-file {conf}']
    return _serve(name, argv, env, port, workdir)


NULL_APP = """\
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [b'{"jobs": []}']
"""


def start_null(workdir, port, processes=2, threads=2):
    """A do-nothing WSGI app under the same uwsgi: the generator's ceiling."""
    path = os.path.join(workdir, 'null_app.py')
    with open(path, 'w') as handle:
        handle.write(NULL_APP)
    argv = _uwsgi_argv(OURS_VENV, port, processes, threads) + [
        '--wsgi-file', path]
    service = Service('null', argv, _env(workdir), port,
                      os.path.join(workdir, 'null.log'))
    try:
        return service.wait_ready()
    except BaseException:
        service.stop()
        raise
