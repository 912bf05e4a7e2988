"""Helpers for the tests that drive the real OpenStack clients.

The clients run in their own virtualenv (``tests.fixtures.openstack_clients``)
as separate processes: ``LibraryClient`` talks to a worker that holds a
``freezerclient.v2.client.Client``, ``Cli`` runs the ``freezer`` program,
``Service`` looks at the API with plain HTTP and a token, to check what the
clients did from the service's side.
"""

import csv
import io
import json
import os
import select
import stat
import subprocess
import time

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'freezerclient_worker.py')
# Guards against a hung process; nothing asserts how fast anything is.
HANG_GUARD = 180


class ClientError(Exception):
    """An exception raised by freezerclient inside the worker."""

    def __init__(self, path, error):
        self.path = path
        self.type = error['type']
        self.status_code = error['status_code']
        self.message = error['message']
        super().__init__(f'{path}: {self.type}: {self.message}')


class _Path:
    def __init__(self, owner, path):
        self._owner = owner
        self._path = path

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return _Path(self._owner, f'{self._path}.{name}')

    def __call__(self, *args, **kwargs):
        return self._owner.call(self._path, *args, **kwargs)


class LibraryClient:
    """``freezerclient.v2.client.Client`` in the clients' virtualenv.

    ``lib.jobs.create(doc)`` runs ``client.jobs.create(doc)`` in the worker
    and returns its (JSON) result, or raises ``ClientError``;
    ``lib.attr('client_id')`` reads an attribute.
    """

    def __init__(self, venv, account, auth_url, workdir, endpoint=None,
                 endpoint_type=None, name='library'):
        self.log_path = os.path.join(workdir, f'{name}.log')
        self._log = open(self.log_path, 'w')
        self._proc = subprocess.Popen(
            [venv.python, WORKER], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env=venv.env(workdir), cwd=workdir)
        try:
            self._connect(account, auth_url, endpoint, endpoint_type)
        except BaseException:
            self.close()
            raise

    def _connect(self, account, auth_url, endpoint, endpoint_type):
        self._exchange({'auth': {
            'auth_url': auth_url, 'username': account.username,
            'password': account.password,
            'project_name': account.project_name,
            'user_domain_name': account.user_domain_name,
            'project_domain_name': account.project_domain_name},
            'endpoint': endpoint, 'endpoint_type': endpoint_type},
            'connect')

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return _Path(self, name)

    def call(self, path, *args, **kwargs):
        return self._exchange({'path': path, 'call': True, 'args': args,
                               'kwargs': kwargs}, path)

    def attr(self, path):
        return self._exchange({'path': path, 'call': False}, path)

    def _exchange(self, request, path):
        try:
            self._proc.stdin.write(json.dumps(request) + '\n')
            self._proc.stdin.flush()
        except BrokenPipeError:
            line = ''
        else:
            ready, _, _ = select.select([self._proc.stdout], [], [],
                                        HANG_GUARD)
            line = self._proc.stdout.readline() if ready else ''
        if not line:
            raise AssertionError(f'the freezerclient worker gave no answer '
                                 f'to {path}:\n{self.log()}')
        answer = json.loads(line)
        if 'error' in answer:
            raise ClientError(path, answer['error'])
        return answer['result']

    def log(self):
        self._log.flush()
        with open(self.log_path, errors='replace') as handle:
            return handle.read()[-4000:]

    def close(self):
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdout, self._log):
            if not stream.closed:
                stream.close()


class Cli:
    """The ``freezer`` program, authenticated as ``account``."""

    def __init__(self, venv, account, auth_url, workdir):
        self.program = venv.freezer
        self.workdir = workdir
        self.env = venv.env(workdir, **account.os_env(auth_url))

    def run(self, *args, ok=True):
        proc = subprocess.run([self.program, *args], capture_output=True,
                              text=True, env=self.env, cwd=self.workdir,
                              stdin=subprocess.DEVNULL, timeout=HANG_GUARD)
        if ok and proc.returncode != 0:
            raise AssertionError(
                f'freezer {" ".join(args)} exited {proc.returncode}:\n'
                f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
        return proc

    def json(self, *args):
        out = self.run(*args, '-f', 'json').stdout
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError(f'freezer {" ".join(args)} printed no '
                                 f'JSON:\n{out}') from None

    def rows(self, *args):
        """A list command's rows, through the csv formatter."""
        out = self.run(*args, '-f', 'csv').stdout
        return list(csv.DictReader(io.StringIO(out)))

    def write(self, name, document):
        path = os.path.join(self.workdir, name)
        with open(path, 'w') as handle:
            json.dump(document, handle)
        return path


class Service:
    """The API seen with plain HTTP and ``account``'s token (v2 paths)."""

    def __init__(self, api, account):
        self.api = api
        self.account = account
        self.prefix = f'/v2/{account.project_id}'

    def request(self, method, path, expect=200, **kwargs):
        resp = self.api.request(method, self.prefix + path,
                                account=self.account, **kwargs)
        if expect is not None and resp.status_code != expect:
            raise AssertionError(f'{method} {self.prefix}{path}: expected '
                                 f'{expect}, got {resp.status_code} '
                                 f'{resp.text[:2000]}')
        return resp

    def get(self, kind, doc_id=None, expect=200):
        path = f'/{kind}/' + (doc_id or '')
        resp = self.request('GET', path, expect=expect)
        return resp.json() if resp.status_code == 200 else None

    def list(self, kind, search=None, limit=100):
        resp = self.request('GET', f'/{kind}/?limit={limit}',
                            **({'json': search} if search else {}))
        return resp.json()[kind]

    def ids(self, kind, search=None):
        key = {'jobs': 'job_id', 'actions': 'action_id',
               'sessions': 'session_id', 'backups': 'backup_id'}.get(kind)
        found = self.list(kind, search)
        if kind == 'clients':
            return [doc['client']['client_id'] for doc in found]
        return [doc[key] for doc in found]


def wait_for(probe, what, describe=None, timeout=HANG_GUARD, interval=0.5):
    """Call ``probe`` until it returns something true; return that.

    The deadline only stops a hung run; on expiry the test fails with
    ``describe()`` (logs, the last state seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = describe() if describe else ''
            raise AssertionError(f'gave up waiting for {what}\n{detail}')
        time.sleep(interval)


def tree(root):
    """What a restore must reproduce: names, types, modes, contents."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ('link', os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ('dir', oct(stat.S_IMODE(info.st_mode)))
            else:
                with open(path, 'rb') as handle:
                    found[rel] = ('file', oct(stat.S_IMODE(info.st_mode)),
                                  handle.read())
    return found


def read_tail(path, size=6000):
    try:
        with open(path, errors='replace') as handle:
            return handle.read()[-size:]
    except OSError as error:
        return f'({path}: {error})'
