"""Concurrent requests through one app (spec D8): no double tag bump, no
lost updates. Threads share the WSGI app, as a threaded server would."""

import threading

from tests.api import helpers

THREADS = 8


def _run_together(functions):
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)
    errors = []

    def worker(i, fn):
        try:
            barrier.wait(timeout=10)
            results[i] = fn()
        except Exception as ex:  # noqa: BLE001 - reported below
            errors.append(ex)

    threads = [threading.Thread(target=worker, args=(i, fn))
               for i, fn in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_concurrent_starts_bump_the_tag_once(api):
    client_id = helpers.register_client(api, 'node1')
    session_id = helpers.make_session(api)
    jobs = [helpers.make_job(api, client_id) for _ in range(THREADS)]
    for job_id in jobs:
        assert api.put('sessions', session_id, 'jobs',
                       job_id).status_code == 204

    def start(job_id):
        return lambda: api.post('sessions', session_id, 'action', json={
            'start': {'job_id': job_id, 'current_tag': 0}})

    responses = _run_together([start(j) for j in jobs])
    for resp in responses:
        assert resp.status_code == 202, resp.text
        assert resp.json == {'result': 'success', 'session_tag': 1}
    session = api.doc('sessions', session_id)
    assert session['session_tag'] == 1
    assert all(session['jobs'][j]['status'] == 'running' for j in jobs)


def test_concurrent_patches_are_not_lost(api):
    client_id = helpers.register_client(api, 'node1')
    job_id = helpers.make_job(api, client_id)
    keys = ['schedule_month', 'schedule_day', 'schedule_week',
            'schedule_day_of_week', 'schedule_hour', 'schedule_minute',
            'schedule_second', 'schedule_year']

    def patch(key):
        value = '2030' if key == 'schedule_year' else '1'
        return lambda: api.patch('jobs', job_id, json={
            'job_schedule': {key: value}})

    version = api.doc('jobs', job_id)['_version']
    responses = _run_together([patch(k) for k in keys])
    assert all(r.status_code == 200 for r in responses), [
        r.text for r in responses]
    doc = api.doc('jobs', job_id)
    for key in keys:
        assert key in doc['job_schedule'], key
    assert doc['_version'] == version + len(keys)
    assert sorted(r.json['version'] for r in responses) == list(
        range(version + 1, version + len(keys) + 1))


def test_event_and_scheduler_patch_both_apply(api):
    client_id = helpers.register_client(api, 'node1')
    job_id = helpers.make_job(api, client_id)
    calls = [
        lambda: api.post('jobs', job_id, 'event', json={'abort': None}),
        lambda: api.patch('jobs', job_id, json={
            'job_schedule': {'current_pid': 4242}}),
    ]
    event, patch = _run_together(calls)
    assert event.status_code == 202
    assert patch.status_code == 200
    schedule = api.doc('jobs', job_id)['job_schedule']
    assert schedule['event'] == 'abort'
    assert schedule['current_pid'] == 4242


def test_concurrent_client_registration_one_wins(api):
    calls = [lambda: api.post('clients', json={'client_id': 'race-node'})
             for _ in range(THREADS)]
    responses = _run_together(calls)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (THREADS - 1)
    assert len(api.list('clients')) == 1


def test_concurrent_action_creation_with_same_id(api):
    calls = [lambda: api.post('actions', json=helpers.action_body(
        action_id='race-action')) for _ in range(THREADS)]
    responses = _run_together(calls)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (THREADS - 1)
