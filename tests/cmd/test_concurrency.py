"""Several API processes on one store, many clients at once (spec D8).

Two freezer-api processes share one SQLite file, or one PostgreSQL
database; threads act like schedulers on several hosts. Invariants: exactly
one tag bump per session run, no lost PATCH, never a 5xx.
"""

import concurrent.futures
import itertools
import time

import pytest
import requests

from freezer_api.cmd import manage
from tests.fixtures import servers

PROJECT = 'proj1'
HEADERS = {'X-User-Id': 'sched', 'X-Project-Id': PROJECT,
           'X-Roles': 'member,reader'}
JOBS = 8
SCHEDULE_KEYS = ('schedule_month', 'schedule_day', 'schedule_week',
                 'schedule_day_of_week', 'schedule_hour', 'schedule_minute',
                 'schedule_second', 'schedule_year')


@pytest.fixture(params=['sqlite', 'postgresql'])
def cluster(request, tmp_path):
    if request.param == 'sqlite':
        url = f'sqlite:///{tmp_path}/shared.sqlite'
    else:
        url = request.getfixturevalue('postgresql_url')
    started = []
    for name in ('a', 'b'):
        port = servers.free_port()
        conf = servers.write_config(tmp_path / f'{name}.conf', url,
                                    port=port)
        if not started:
            assert manage.main(['--config-file', str(conf), 'db',
                                'sync']) == 0
        started.append(servers.start_freezer_api(
            tmp_path, ['--config-file', str(conf)], port=port, name=name))
    yield [server.url + f'/v2/{PROJECT}' for server in started]
    for server in started:
        server.stop()


class Api:
    """Round-robins requests over the servers and records every status."""

    def __init__(self, bases):
        self.bases = itertools.cycle(bases)
        self.statuses = []

    def __call__(self, method, path, body=None, expect=None):
        response = requests.request(method, next(self.bases) + path,
                                    json=body, headers=HEADERS, timeout=60)
        self.statuses.append(response.status_code)
        assert response.status_code < 500, response.text
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None


def run_all(calls):
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_session_runs_and_patches_across_processes(cluster):
    api = Api(cluster)
    api('POST', '/clients/', {'client_id': f'{PROJECT}_node'}, expect=201)
    job_ids = [api('POST', '/jobs/', {
        'client_id': f'{PROJECT}_node', 'job_schedule': {},
        'job_actions': [{'freezer_action': {'action': 'backup'}}]},
        expect=201)['job_id'] for _ in range(JOBS)]
    session_id = api('POST', '/sessions/', {'schedule': {}, 'hold_off': 1},
                     expect=201)['session_id']
    run_all([lambda j=j: api('PUT', f'/sessions/{session_id}/jobs/{j}',
                             expect=204) for j in job_ids])
    session = api('GET', f'/sessions/{session_id}')
    assert sorted(session['jobs']) == sorted(job_ids)

    for run_number in range(1, 4):
        tag = run_number - 1
        answers = run_all([
            lambda j=j: api('POST', f'/sessions/{session_id}/action',
                            {'start': {'job_id': j, 'current_tag': tag}},
                            expect=202) for j in job_ids])
        assert {a['result'] for a in answers} <= {'success', 'out-of-sync'}
        assert 'success' in {a['result'] for a in answers}
        session = api('GET', f'/sessions/{session_id}')
        assert session['session_tag'] == run_number  # one bump per run
        joined = [a for a in answers if a['result'] == 'success']
        assert all(a['session_tag'] == run_number for a in joined)
        run_all([lambda j=j: api('POST', f'/sessions/{session_id}/action',
                                 {'end': {'job_id': j,
                                          'current_tag': run_number,
                                          'result': 'success'}},
                                 expect=202) for j in job_ids])
        session = api('GET', f'/sessions/{session_id}')
        assert session['status'] == 'completed'
        assert session['result'] == 'success'
        # times are whole seconds: a 1 s window can span almost 2 s
        time.sleep(2.1)

    # Many PATCHes of one job, each writer owning one schedule key, mixed
    # with operator events: nothing may be lost.
    job_id = job_ids[0]
    before = api('GET', f'/jobs/{job_id}')['_version']
    rounds = 6

    def patcher(key):
        def patch_all():
            for i in range(rounds):
                value = f'20{i:02d}' if key == 'schedule_year' else str(i)
                api('PATCH', f'/jobs/{job_id}',
                    {'job_schedule': {key: value}}, expect=200)
        return patch_all

    events = [lambda e=e: api('POST', f'/jobs/{job_id}/event', {e: None},
                              expect=202) for e in ('stop', 'abort')]
    run_all([patcher(key) for key in SCHEDULE_KEYS] + events)
    job = api('GET', f'/jobs/{job_id}')
    last = rounds - 1
    for key in SCHEDULE_KEYS:
        expected = f'20{last:02d}' if key == 'schedule_year' else str(last)
        assert job['job_schedule'][key] == expected, key
    assert job['job_schedule']['event'] in ('stop', 'abort')
    assert job['_version'] == before + len(SCHEDULE_KEYS) * rounds + 2

    # Open-schema documents: every writer's key survives.
    run_all([lambda t=t: api('PATCH', f'/sessions/{session_id}',
                             {f'note_{t}': t}, expect=200)
             for t in range(24)])
    session = api('GET', f'/sessions/{session_id}')
    assert all(session[f'note_{t}'] == t for t in range(24))
    assert all(status < 500 for status in api.statuses)
