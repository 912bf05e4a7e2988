"""Session runs driven by two schedulers, with a controlled clock
(spec §3.1, §10.4 item 7, D8, D9, D10)."""

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error

T0 = 1_700_000_000


class Nodes:
    """A session with two member jobs on two clients."""

    def __init__(self, api, hold_off=None):
        self.api = api
        extra = {} if hold_off is None else {'hold_off': hold_off}
        self.session_id = helpers.make_session(
            api, schedule={'schedule_interval': '1 days',
                           'schedule_start_date': '2024-01-01T01:00:00'},
            **extra)
        self.clients = [helpers.register_client(api, f'node{i}')
                        for i in (1, 2)]
        self.jobs = [helpers.make_job(api, client_id,
                                      job_schedule={'status': 'scheduled'})
                     for client_id in self.clients]
        for job_id in self.jobs:
            resp = api.put('sessions', self.session_id, 'jobs', job_id,
                           slash=False)
            assert resp.status_code == 204, resp.text

    def action(self, name, job, tag, result=None):
        params = {'job_id': self.jobs[job], 'current_tag': tag}
        if result is not None:
            params['result'] = result
        return self.api.post('sessions', self.session_id, 'action',
                             json={name: params})

    def start(self, job, tag):
        resp = self.action('start', job, tag)
        assert resp.status_code == 202, resp.text
        return resp.json

    def end(self, job, tag, result):
        resp = self.action('end', job, tag, result)
        assert resp.status_code == 202, resp.text
        return resp.json

    @property
    def session(self):
        return self.api.doc('sessions', self.session_id)


def test_full_walk(api, clock):
    """§10.4 item 7, step by step."""
    nodes = Nodes(api)
    for job_id in nodes.jobs:
        job = api.doc('jobs', job_id)
        assert job['session_id'] == nodes.session_id
        assert job['session_tag'] == 0
        assert job['job_schedule']['schedule_interval'] == '1 days'
        assert job['job_schedule']['schedule_start_date'] == \
            '2024-01-01T01:00:00'
        assert job['job_schedule']['status'] == 'scheduled'
    assert sorted(nodes.session['jobs']) == sorted(nodes.jobs)

    # first node starts: new run, tag 0 -> 1
    assert nodes.start(0, 0) == {'result': 'success', 'session_tag': 1}
    session = nodes.session
    assert session['session_tag'] == 1
    assert session['status'] == 'running'
    assert session['time_start'] == T0
    assert session['jobs'][nodes.jobs[0]]['status'] == 'running'

    # second node, a few seconds later, still holding the old tag: joins
    clock.advance(10)
    assert nodes.start(1, 0) == {'result': 'success', 'session_tag': 1}
    session = nodes.session
    assert session['session_tag'] == 1
    assert session['time_start'] == T0
    assert session['jobs'][nodes.jobs[1]]['status'] == 'running'

    # start again with the new tag within the hold-off window
    clock.advance(10)
    version = nodes.session['_version']
    assert nodes.start(1, 1) == {'result': 'hold-off', 'session_tag': 1}
    assert nodes.session['_version'] == version

    # after the hold-off window, with the old tag
    clock.advance(30)
    assert nodes.start(0, 0) == {'result': 'out-of-sync', 'session_tag': 1}
    assert nodes.session['_version'] == version

    # tag too high
    resp = nodes.action('start', 0, 2)
    assert_error(resp, 400)
    assert nodes.session['_version'] == version

    # end both
    assert nodes.end(0, 1, 'success') == {'result': 'success',
                                          'session_tag': 1}
    session = nodes.session
    assert session['status'] == 'running'
    assert session['result'] == ''
    assert session['jobs'][nodes.jobs[0]]['status'] == 'completed'
    assert session['jobs'][nodes.jobs[0]]['result'] == 'success'
    clock.advance(5)
    assert nodes.end(1, 1, 'success') == {'result': 'success',
                                          'session_tag': 1}
    session = nodes.session
    assert session['status'] == 'completed'
    assert session['result'] == 'success'
    assert session['time_end'] == T0 + 55
    assert session['session_tag'] == 1

    # remove a job
    in_session = api.doc('jobs', nodes.jobs[1])
    resp = api.delete('sessions', nodes.session_id, 'jobs', nodes.jobs[1])
    assert resp.status_code == 204
    job = api.doc('jobs', nodes.jobs[1])
    assert job['session_id'] == ''
    assert job['session_tag'] == 0
    assert job['job_schedule'] == {**in_session['job_schedule'],
                                   'event': 'stop'}
    assert list(nodes.session['jobs']) == [nodes.jobs[0]]


def test_hold_off_boundary_is_inclusive(api, clock):
    nodes = Nodes(api)
    assert nodes.start(0, 0)['result'] == 'success'
    clock.advance(30)
    assert nodes.start(1, 0) == {'result': 'success', 'session_tag': 1}
    assert nodes.start(0, 1) == {'result': 'hold-off', 'session_tag': 1}
    clock.advance(1)
    assert nodes.start(0, 1) == {'result': 'success', 'session_tag': 2}


def test_new_run_after_hold_off_with_current_tag(api, clock):
    nodes = Nodes(api)
    assert nodes.start(0, 0)['session_tag'] == 1
    clock.advance(100)
    # previous run still "running": a new run may start anyway
    assert nodes.start(0, 1) == {'result': 'success', 'session_tag': 2}
    session = nodes.session
    assert session['time_start'] == T0 + 100
    assert session['status'] == 'running'
    assert session['result'] == ''


def test_custom_hold_off(api, clock):
    nodes = Nodes(api, hold_off=5)
    assert nodes.start(0, 0)['session_tag'] == 1
    clock.advance(6)
    assert nodes.start(1, 0) == {'result': 'out-of-sync', 'session_tag': 1}


def test_job_entries_carry_the_run_tag(api, clock):
    nodes = Nodes(api)
    nodes.start(0, 0)
    clock.advance(1)
    nodes.start(1, 0)
    jobs = nodes.session['jobs']
    assert jobs[nodes.jobs[0]]['session_tag'] == 1
    assert jobs[nodes.jobs[1]]['session_tag'] == 1


@pytest.mark.parametrize('result', ['fail', 'aborted'])
def test_run_fails_as_soon_as_a_participant_fails(api, clock, result):
    nodes = Nodes(api)
    nodes.start(0, 0)
    clock.advance(2)
    nodes.start(1, 0)
    clock.advance(2)
    assert nodes.end(1, 1, result) == {'result': 'success',
                                       'session_tag': 1}
    session = nodes.session
    assert session['status'] == 'completed'
    assert session['result'] == 'fail'
    assert session['time_end'] == T0 + 4
    # the other job finishing later does not reopen or change the outcome
    clock.advance(2)
    nodes.end(0, 1, 'success')
    session = nodes.session
    assert session['status'] == 'completed'
    assert session['result'] == 'fail'
    assert session['time_end'] == T0 + 4


def test_success_waits_for_hold_off_when_a_member_did_not_join(api, clock):
    nodes = Nodes(api)
    nodes.start(0, 0)
    clock.advance(5)
    nodes.end(0, 1, 'success')
    session = nodes.session
    assert session['status'] == 'running'
    assert session['result'] == ''


def test_success_after_hold_off_without_the_other_member(api, clock):
    nodes = Nodes(api)
    nodes.start(0, 0)
    clock.advance(31)
    nodes.end(0, 1, 'success')
    session = nodes.session
    assert session['status'] == 'completed'
    assert session['result'] == 'success'
    assert session['time_end'] == T0 + 31


def test_stale_results_of_previous_run_do_not_count(api, clock):
    nodes = Nodes(api)
    # run 1: job 1 fails
    nodes.start(0, 0)
    nodes.start(1, 0)
    nodes.end(1, 1, 'fail')
    nodes.end(0, 1, 'success')
    assert nodes.session['result'] == 'fail'
    # run 2: only job 0 runs, after the window it alone decides
    clock.advance(100)
    assert nodes.start(0, 1) == {'result': 'success', 'session_tag': 2}
    clock.advance(40)
    nodes.end(0, 2, 'success')
    session = nodes.session
    assert session['status'] == 'completed'
    assert session['result'] == 'success'


def test_stale_success_of_previous_run_does_not_complete_new_run(
        api, clock):
    nodes = Nodes(api)
    nodes.start(0, 0)
    nodes.start(1, 0)
    nodes.end(0, 1, 'success')
    nodes.end(1, 1, 'success')
    clock.advance(100)
    nodes.start(0, 1)
    clock.advance(1)
    nodes.start(1, 1)  # joins run 2 with the old tag 1
    clock.advance(50)
    nodes.end(0, 2, 'success')
    session = nodes.session
    # job 1 is running in run 2; its run-1 success must not count
    assert session['status'] == 'running'
    assert session['result'] == ''
    nodes.end(1, 2, 'success')
    assert nodes.session['status'] == 'completed'
    assert nodes.session['result'] == 'success'


def test_end_with_other_tag_is_out_of_sync_and_changes_nothing(api, clock):
    nodes = Nodes(api)
    nodes.start(0, 0)
    before = nodes.session
    for tag in (0, 2, 7):
        assert nodes.end(0, tag, 'success') == {'result': 'out-of-sync',
                                                'session_tag': 1}
    assert nodes.session == before
    job_before = api.doc('jobs', nodes.jobs[0])
    assert api.doc('jobs', nodes.jobs[0]) == job_before


def test_end_keeps_tag_and_records_result(api, clock):
    nodes = Nodes(api)
    nodes.start(0, 0)
    clock.advance(3)
    nodes.start(1, 0)
    clock.advance(7)
    nodes.end(0, 1, 'success')
    entry = nodes.session['jobs'][nodes.jobs[0]]
    assert entry['status'] == 'completed'
    assert entry['result'] == 'success'
    assert entry['time_ended'] == T0 + 10
    assert entry['time_started'] == T0


def test_end_before_any_start(api, clock):
    nodes = Nodes(api)
    # tag 0, no run yet: the end is for the current tag and is recorded,
    # but nothing ran in this run; it must not crash
    resp = nodes.action('end', 0, 0, 'success')
    assert resp.status_code in (202, 400), resp.text
    if resp.status_code == 202:
        assert resp.json['session_tag'] == 0
    else:
        assert_error(resp, 400)


def test_starts_from_both_versions_share_the_session(client, clock):
    v1 = helpers.Api(client, 'v1')
    v2 = helpers.Api(client, 'v2')
    nodes = Nodes(v1)
    assert nodes.start(0, 0)['session_tag'] == 1
    resp = v2.post('sessions', nodes.session_id, 'action', json={
        'start': {'job_id': nodes.jobs[1], 'current_tag': 0}})
    assert resp.status_code == 202
    assert resp.json == {'result': 'success', 'session_tag': 1}


def test_scheduler_adopts_returned_tag_via_patch(api, clock):
    """The scheduler PATCHes the tag it adopted; session_id stays put."""
    nodes = Nodes(api)
    result = nodes.start(0, 0)
    resp = api.patch('jobs', nodes.jobs[0], json={
        'job_schedule': {'status': 'running'},
        'session_id': nodes.session_id,
        'session_tag': result['session_tag']})
    assert resp.status_code == 200, resp.text
    job = api.doc('jobs', nodes.jobs[0])
    assert job['session_tag'] == 1
    assert job['session_id'] == nodes.session_id
