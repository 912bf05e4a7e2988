"""The documents of the benchmark, and how a server is filled with them.

Both servers get the same documents through their own API (``fill``): 100
clients of 10 jobs each (two ``completed``, the others ``scheduled``), 400
sessions of one job each, and 1 000 backups under 100 names (10 each). The
scale levels add filler documents straight into the store (``bench.scale``).
"""

import concurrent.futures
import json
import threading

import requests

from bench import deploy

N_CLIENTS = 100
JOBS_PER_CLIENT = 10
COMPLETED_PER_CLIENT = 2
SESSION_JOBS_PER_CLIENT = 4
BACKUP_NAMES = 100
BACKUPS_PER_NAME = 10


def client_id(i):
    return f'{deploy.PROJECT}_node{i:03d}'


def client_doc(i):
    return {'client_id': client_id(i), 'hostname': f'node{i:03d}',
            'description': f'scheduler on node{i:03d}'}


def job_doc(client, n, completed=False):
    """A job as freezer-scheduler and the CLI create them."""
    return {
        'description': f'nightly backup {n} of {client}',
        'client_id': client,
        'job_schedule': {
            'schedule_interval': '1 days',
            'schedule_start_date': '2026-01-01T01:00:00',
            'status': 'completed' if completed else 'scheduled',
            'event': '',
            'result': 'success' if completed else '',
        },
        'job_actions': [{
            'freezer_action': {
                'action': 'backup',
                'mode': 'fs',
                'path_to_backup': '/var/lib/mysql',
                'backup_name': f'mysql_{client}_{n}',
                'container': f'freezer_{client}',
                'storage': 'swift',
                'log_file': '/var/log/freezer-agent.log',
                'remove_older_than': 30,
            },
            'max_retries': 3,
            'max_retries_interval': 60,
            'mandatory': True,
        }],
    }


def backup_doc(name, n):
    """Backup metadata as freezer-agent posts it after a run."""
    return {
        'action': 'backup',
        'always_level': '',
        'backup_media': 'fs',
        'backup_name': name,
        'client_os': 'linux',
        'client_version': '18.0.0',
        'compression': 'gzip',
        'consistency_checksum': '',
        'container': 'freezer_backups',
        'container_segments': '',
        'curr_backup_level': n % 7,
        'dry_run': '',
        'encrypted': False,
        'engine_name': 'tar',
        'fs_real_path': '/var/lib/mysql',
        'hostname': f'node{n % N_CLIENTS:03d}',
        'level': 0,
        'max_level': 7,
        'mode': 'fs',
        'path_to_backup': '/var/lib/mysql',
        'snapshot': False,
        'storage': 'swift',
        'time_stamp': 1_780_000_000 + n,
        'vol_snap_path': '/var/lib/mysql',
        'backup_chain_name': f'{name}_chain',
        'job_id': f'{n:032x}',
    }


def backup_name(i):
    return f'mysql_node{i:03d}'


CREATED_BACKUP = backup_doc('bench_created', 1)


class _Http:
    def __init__(self, base):
        self.base = base
        self.local = threading.local()

    def call(self, method, path, body=None, expect=(200, 201, 202, 204)):
        session = getattr(self.local, 'session', None)
        if session is None:
            session = self.local.session = requests.Session()
        data = None if body is None else json.dumps(body)
        response = session.request(
            method, self.base + path, data=data, headers=deploy.HEADERS,
            timeout=120)
        if response.status_code not in expect:
            raise RuntimeError(f'{method} {path}: {response.status_code} '
                               f'{response.text[:500]}')
        return response.json() if response.content else None


def fill(url, workers=4, small=False):
    """Create the base documents through the API; return the ids.

    ``small`` creates a tenth of them (harness checks only).
    """
    n_clients = N_CLIENTS // 10 if small else N_CLIENTS
    n_names = BACKUP_NAMES // 10 if small else BACKUP_NAMES
    http = _Http(f'{url}/v2/{deploy.PROJECT}')
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        list(pool.map(lambda i: http.call('POST', '/clients/',
                                          client_doc(i)), range(n_clients)))
        specs = [(client_id(i), n) for n in range(JOBS_PER_CLIENT)
                 for i in range(n_clients)]
        job_ids = list(pool.map(
            lambda spec: http.call('POST', '/jobs/', job_doc(
                spec[0], spec[1], spec[1] < COMPLETED_PER_CLIENT))['job_id'],
            specs))
        by_n = {}
        for (client, n), job in zip(specs, job_ids):
            by_n.setdefault(n, []).append(job)
        first = COMPLETED_PER_CLIENT
        session_jobs = [j for n in range(first, first +
                                         SESSION_JOBS_PER_CLIENT)
                        for j in by_n[n]]
        patch_jobs = [j for n in range(first + SESSION_JOBS_PER_CLIENT,
                                       JOBS_PER_CLIENT) for j in by_n[n]]

        def make_session(job):
            sid = http.call('POST', '/sessions/', {
                'description': 'consistent snapshot', 'hold_off': 0,
                'schedule': {'schedule_interval': '1 days'}})['session_id']
            http.call('PUT', f'/sessions/{sid}/jobs/{job}')
            return [sid, job]

        sessions = list(pool.map(make_session, session_jobs))
        backups = [(backup_name(i), n) for n in range(BACKUPS_PER_NAME)
                   for i in range(n_names)]
        list(pool.map(lambda spec: http.call(
            'POST', '/backups/', backup_doc(spec[0], spec[1] * 1000 +
                                            int(spec[0][-3:]))), backups))
    finally:
        pool.shutdown()
    return {
        'clients': [client_id(i) for i in range(n_clients)],
        'jobs': job_ids,
        'patch_jobs': patch_jobs,
        'sessions': sessions,
        'backup_names': [backup_name(i) for i in range(n_names)],
    }


def _lua(value):
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return '{' + ', '.join(_lua(v) for v in value) + '}'
    if isinstance(value, dict):
        return '{' + ', '.join(f'[{json.dumps(k)}] = {_lua(v)}'
                               for k, v in value.items()) + '}'
    return json.dumps(value)


def write_lua(path, ids, threads):
    """The data file read by ``lua/scenario.lua``."""
    headers = {k: v for k, v in deploy.HEADERS.items()}
    table = dict(ids, prefix=f'/v2/{deploy.PROJECT}', headers=headers,
                 threads=threads, backup_body=json.dumps(CREATED_BACKUP))
    with open(path, 'w') as handle:
        handle.write('return ' + _lua(table) + '\n')
    return path
