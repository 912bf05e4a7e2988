"""Backup health figures (issue 15), in process on SQLite.

``python -m bench.health poll``: a scheduler's poll (``GET /v2/p/jobs``
with a ``client_id`` match) with the presence tracker on and off,
interleaved in rounds so that the machine's noise hits both alike.

``python -m bench.health coverage --jobs N --runs M``: ``GET /coverage``
over N jobs and M run records in all (loaded straight into SQLite with the
driver's own index rows).

Figures are medians and 99th percentiles in milliseconds; nothing here
asserts a time.
"""

import argparse
import json
import statistics
import tempfile
import time

import falcon.testing

from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api.cmd import common
from freezer_api.core import health
from freezer_api.storage.query import Query
from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
from tests.api.helpers import services_of
from tests.conftest import make_conf

PROJECT = 'bench'
HEADERS = {'X-User-Id': 'u', 'X-Project-Id': PROJECT,
           'X-Roles': 'member,reader', 'Content-Type': 'application/json'}


def _app(folder):
    conf = make_conf(folder)
    driver = SQLAlchemyDriver(conf)
    driver.upgrade_schema()
    app = app_module.create_app(conf, driver)
    # as the entry points do once the application is loaded
    common.freeze_startup_objects()
    return driver, app, falcon.testing.TestClient(
        context.NoAuthMiddleware(app, conf))


def _client_and_jobs(client, jobs=20, client_id='bench_node1'):
    client.simulate_post(f'/v2/{PROJECT}/clients', headers=HEADERS,
                         json={'client_id': client_id, 'hostname': 'n'})
    ids = []
    for i in range(jobs):
        body = {
            'client_id': client_id, 'description': f'job {i}',
            'job_schedule': {'schedule_interval': '1 hours'},
            'job_actions': [{'freezer_action': {
                'action': 'backup', 'mode': 'fs', 'path_to_backup': '/etc',
                'backup_name': f'b{i}', 'container': 'c',
                'storage': 'local'}}]}
        resp = client.simulate_post(f'/v2/{PROJECT}/jobs', headers=HEADERS,
                                    json=body)
        ids.append(resp.json['job_id'])
    return ids


def _stats(samples):
    ordered = sorted(samples)
    # p99: the sample below which 99 % fall (of 30 reads, the 29th)
    return {'median_ms': round(statistics.median(ordered) * 1000, 3),
            'p99_ms': round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
            'max_ms': round(ordered[-1] * 1000, 3)}


def poll(rounds=20, per_round=100):
    with tempfile.TemporaryDirectory() as folder:
        driver, app, client = _app(folder)
        services = services_of(client.app)
        _client_and_jobs(client)
        tracker = services.jobs.presence
        body = json.dumps({'match': [{'client_id': 'bench_node1'}]})
        timings = {'with_presence': [], 'without_presence': []}
        for number in range(rounds):
            order = ['with_presence', 'without_presence']
            if number % 2:
                order.reverse()
            for name in order:
                services.jobs.presence = (tracker if name == 'with_presence'
                                          else None)
                for _ in range(per_round):
                    start = time.perf_counter()
                    resp = client.simulate_get(f'/v2/{PROJECT}/jobs',
                                               headers=HEADERS, body=body,
                                               query_string='limit=100')
                    timings[name].append(time.perf_counter() - start)
                    assert resp.status_code == 200, resp.text
        tracker.flush()
        driver.close()
    result = {name: _stats(values) for name, values in timings.items()}
    result['median_ratio'] = round(
        result['with_presence']['median_ms']
        / result['without_presence']['median_ms'], 3)
    return result


def _bulk(path, kind, rows):
    """Insert ``(id, created_at, doc)`` rows of ``kind`` with their index
    rows (``models.term_rows``, the driver's own) straight into SQLite."""
    import sqlite3

    from freezer_api.storage.sqlalchemy import models
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute('PRAGMA synchronous = OFF')
        pk = raw.execute(f'SELECT coalesce(max(pk), 0) FROM {kind}'
                         ).fetchone()[0]
        doc_rows, term_rows = [], []

        def write():
            raw.execute('BEGIN')
            raw.executemany(
                f'INSERT INTO {kind} (pk, id, project_id, user_id, version,'
                ' created_at, doc) VALUES (?, ?, ?, ?, 1, ?, ?)', doc_rows)
            raw.executemany(
                f'INSERT INTO {kind}_terms (doc_pk, path, key, value, num,'
                ' text) VALUES (?, ?, ?, ?, ?, ?)', term_rows)
            raw.execute('COMMIT')
            doc_rows.clear()
            term_rows.clear()

        for doc_id, created_at, doc in rows:
            pk += 1
            doc_rows.append((pk, doc_id, PROJECT, 'u', created_at,
                             json.dumps(doc, separators=(',', ':'))))
            term_rows.extend(
                (row['doc_pk'], row['path'], row['key'], row['value'],
                 row['num'], row['text'])
                for row in models.term_rows(pk, doc))
            if len(doc_rows) >= 20000:
                write()
        if doc_rows:
            write()
        raw.execute('ANALYZE')
    finally:
        raw.close()


def _load_coverage(folder, client, driver, jobs, runs, clients, rng):
    """Fill the store of ``folder``: ``jobs`` hourly jobs (their arming
    times spread over the hour, as real fleets are) on ``clients``
    clients, ``runs`` run records in all (a run an hour per job, newest
    now), and every client's presence; return the seconds it took."""
    from freezer_api.core import presence as presence_rules
    from freezer_api.storage.base import Scope
    [template_id] = _client_and_jobs(client, 1)
    template = driver.get('jobs', template_id, Scope(PROJECT)).doc
    now = int(time.time())
    per_job = max(1, runs // jobs)
    started = time.perf_counter()
    made = []
    for k in range(jobs):
        armed = now - (per_job + 1) * 3600 - rng.randrange(3600)
        doc = {**template, 'job_id': f'job{k:06d}',
               'client_id': f'bench_node{k % clients:04d}',
               'description': f'job {k}',
               'job_schedule': {**template['job_schedule'],
                                'time_created': armed}}
        made.append((doc['job_id'], k, doc))
    _bulk(f'{folder}/freezer.sqlite', 'jobs', made)

    def run_rows():
        for job_id, _, doc in made:
            armed = doc['job_schedule']['time_created']
            for n in range(per_job):
                at = armed + (n + 1) * 3600 + 30
                if at > now:
                    break
                result = 'fail' if rng.random() < 0.03 else 'success'
                run = {'run_id': health.run_id(job_id, at),
                       'job_id': job_id, 'client_id': doc['client_id'],
                       'description': doc['description'],
                       'session_id': '', 'session_tag': 0,
                       'status': 'completed', 'result': result,
                       'start': at, 'end': at + 60,
                       'last_report': at + 60, 'backups': [],
                       'events': [], 'at': at, 'project_id': PROJECT,
                       'user_id': 'u'}
                yield run['run_id'], health.created_at(at), run
    _bulk(f'{folder}/freezer.sqlite', 'runs', run_rows())
    for n in range(clients):
        name = f'bench_node{n:04d}'
        driver.create('presence', presence_rules.presence_id(
            PROJECT, name), PROJECT, 'u', n, {
                'client_id': name, 'project_id': PROJECT,
                'user_id': 'u', 'last_seen': now + 3600,
                'first_seen': now - 30 * 86400, 'gaps': []})
    return time.perf_counter() - started


def coverage(jobs=10000, runs=1000000, clients=100, reads=30, pause=1.0,
             keep=None, profile=None):
    """``GET /coverage`` of a project of ``jobs`` jobs with ``runs`` run
    records (``_load_coverage``), read ``reads`` times ``pause`` seconds
    apart with no background sweep: every read settles the jobs that fell
    due since the one before. The summaries are made first by one sweep
    (its time is printed: what a new release costs once).

    ``keep``: a folder whose store is loaded once and used again by the
    next runs (its clients' last polls are an hour ahead of the load: use
    it within the hour). ``profile``: a file for cProfile's figures of
    the reads."""
    import contextlib
    import os
    import random

    from freezer_api.storage.base import Scope
    rng = random.Random(15)
    with contextlib.ExitStack() as stack:
        if keep is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
        else:
            folder = keep
            os.makedirs(folder, exist_ok=True)
        reused = os.path.exists(f'{folder}/freezer.sqlite')
        driver, app, client = _app(folder)
        stack.callback(driver.close)
        services = services_of(client.app)
        loaded = None if reused else _load_coverage(
            folder, client, driver, jobs, runs, clients, rng)
        stored = driver.count('runs', Scope(PROJECT), Query())
        listed = driver.count('jobs', Scope(PROJECT), Query())
        began = time.perf_counter()
        swept = services.sweeper.sweep()
        sweep_seconds = time.perf_counter() - began
        profiler = None
        if profile:
            import cProfile
            profiler = cProfile.Profile()
        samples = []
        for _ in range(reads):
            time.sleep(pause)
            began = time.perf_counter()
            if profiler:
                profiler.enable()
            resp = client.simulate_get(f'/v2/{PROJECT}/coverage',
                                       headers=HEADERS)
            if profiler:
                profiler.disable()
            samples.append(time.perf_counter() - began)
            assert resp.status_code == 200, resp.text
            assert resp.json['summary']['jobs'] == listed
        if profiler:
            profiler.dump_stats(profile)
    return {'jobs': listed, 'run_records': stored, 'clients': clients,
            'load_seconds': None if loaded is None else round(loaded, 1),
            'first_sweep': {'seconds': round(sweep_seconds, 1), **swept},
            'reads': reads, **_stats(samples)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.health')
    sub = parser.add_subparsers(dest='what', required=True)
    sub.add_parser('poll')
    cov = sub.add_parser('coverage')
    cov.add_argument('--jobs', type=int, default=10000)
    cov.add_argument('--runs', type=int, default=1000000)
    cov.add_argument('--reads', type=int, default=30)
    cov.add_argument('--keep', metavar='FOLDER',
                     help='load the store into FOLDER once and use it '
                     'again on the next runs')
    cov.add_argument('--profile', metavar='FILE',
                     help="cProfile's figures of the reads into FILE")
    args = parser.parse_args(argv)
    if args.what == 'poll':
        print(json.dumps(poll(), indent=2))
    else:
        print(json.dumps(coverage(args.jobs, args.runs, reads=args.reads,
                                  keep=args.keep, profile=args.profile),
                         indent=2))


if __name__ == '__main__':
    main()
