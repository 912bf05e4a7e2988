"""Backup health figures (issue 15), in process on SQLite.

``python -m bench.health poll``: a scheduler's poll (``GET /v2/p/jobs``
with a ``client_id`` match) with the presence tracker on and off,
interleaved in rounds so that the machine's noise hits both alike.

``python -m bench.health coverage --jobs N --runs M``: ``GET /coverage``
over N jobs with M run records each (written through the core).

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
from freezer_api.core import health
from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
from tests.conftest import make_conf

PROJECT = 'bench'
HEADERS = {'X-User-Id': 'u', 'X-Project-Id': PROJECT,
           'X-Roles': 'member,reader', 'Content-Type': 'application/json'}


def _app(folder):
    conf = make_conf(folder)
    driver = SQLAlchemyDriver(conf)
    driver.upgrade_schema()
    app = app_module.create_app(conf, driver)
    return driver, app, falcon.testing.TestClient(
        context.NoAuthMiddleware(app, conf))


def _services(app):
    # the Services behind the routes (every resource holds the same one)
    for route in app._router._roots:
        resource = route.resource
        if resource is not None and hasattr(resource, 'services'):
            return resource.services
    raise RuntimeError('no resource found')


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
    return {'median_ms': round(statistics.median(ordered) * 1000, 3),
            'p99_ms': round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3)}


def poll(rounds=20, per_round=100):
    with tempfile.TemporaryDirectory() as folder:
        driver, app, client = _app(folder)
        services = _services(client.app.app if hasattr(
            client.app, 'app') else client.app)
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


def coverage(jobs=500, runs=20, reads=5):
    with tempfile.TemporaryDirectory() as folder:
        driver, app, client = _app(folder)
        job_ids = _client_and_jobs(client, jobs)
        now = int(time.time())
        start = time.perf_counter()
        for job_id in job_ids:
            for k in range(runs):
                at = now - (k + 1) * 3600
                doc = {'run_id': health.run_id(job_id, at),
                       'job_id': job_id, 'client_id': 'bench_node1',
                       'status': 'completed', 'result': 'success',
                       'start': at, 'end': at + 60, 'last_report': at + 60,
                       'backups': [], 'events': [], 'at': at,
                       'project_id': PROJECT, 'user_id': 'u'}
                driver.create('runs', doc['run_id'], PROJECT, 'u',
                              health.created_at(at), doc)
        loaded = time.perf_counter() - start
        samples = []
        for _ in range(reads):
            began = time.perf_counter()
            resp = client.simulate_get(f'/v2/{PROJECT}/coverage',
                                       headers=HEADERS)
            samples.append(time.perf_counter() - began)
            assert resp.status_code == 200, resp.text
        driver.close()
    return {'jobs': jobs, 'runs_per_job': runs,
            'load_seconds': round(loaded, 1), **_stats(samples)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.health')
    sub = parser.add_subparsers(dest='what', required=True)
    sub.add_parser('poll')
    cov = sub.add_parser('coverage')
    cov.add_argument('--jobs', type=int, default=500)
    cov.add_argument('--runs', type=int, default=20)
    args = parser.parse_args(argv)
    if args.what == 'poll':
        print(json.dumps(poll(), indent=2))
    else:
        print(json.dumps(coverage(args.jobs, args.runs), indent=2))


if __name__ == '__main__':
    main()
