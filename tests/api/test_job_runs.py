"""The run ledger, lost and missed runs (issue 15, points 2-4), in both
versions and on every store of the HTTP suite.

A scheduler is played by hand with the test clock: it polls (lists its
jobs with a client_id match), PATCHes the job running, posts a backup
naming the job, and PATCHes it back with a result, as freezer-scheduler
19 does.
"""

import time

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error

INTERVAL = 600       # the job runs every ten minutes
GRACE = 60           # [health] missed_grace (10% of 600 is 60 too)
OFFLINE_AFTER = 120  # [health] client_offline_after


@pytest.fixture
def conf(conf):
    conf.set_override('missed_grace', GRACE, group='health')
    conf.set_override('client_offline_after', OFFLINE_AFTER, group='health')
    conf.set_override('default_run_lease', 1800, group='health')
    conf.set_override('presence_flush_interval', 0, group='health')
    return conf


class Scheduler:
    """What freezer-scheduler sends, by hand."""

    def __init__(self, api, clock, host='node1'):
        self.api = api
        self.clock = clock
        self.client_id = helpers.client_id_for(api.project, host)
        if api.get('clients', self.client_id).status_code == 404:
            helpers.register_client(api, host)

    def job(self, **extra):
        extra.setdefault('job_schedule',
                         {'schedule_interval': f'{INTERVAL // 60} minutes'})
        return helpers.create(self.api, 'jobs', helpers.job_body(
            self.client_id, **extra))

    def poll(self):
        resp = self.api.get('jobs', json={
            'match': [{'client_id': self.client_id}]})
        assert resp.status_code == 200, resp.text

    def report(self, job_id, **schedule):
        resp = self.api.patch('jobs', job_id,
                              json={'job_schedule': schedule})
        assert resp.status_code == 200, resp.text

    def start(self, job_id):
        started = int(self.clock())
        self.report(job_id, status='running', result='',
                    time_started=started, time_ended=-1)
        return started

    def end(self, job_id, result='success'):
        self.report(job_id, status='scheduled', result=result,
                    time_ended=int(self.clock()))

    def backup(self, job_id):
        return helpers.make_backup(self.api, job_id=job_id)

    def run(self, job_id, result='success', seconds=30):
        started = self.start(job_id)
        backup_id = self.backup(job_id) if result == 'success' else None
        self.clock.advance(seconds)
        self.end(job_id, result)
        return started, backup_id


def runs(api, job_id, query=None, search=None):
    kw = {} if search is None else {'json': search}
    resp = api.get('jobs', job_id, 'runs', query=query, **kw)
    assert resp.status_code == 200, resp.text
    assert list(resp.json) == ['runs']
    return resp.json['runs']


def test_a_run_becomes_a_record_with_its_backup(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job()
    assert runs(api, job_id) == []
    clock.advance(INTERVAL)
    sched.poll()
    started, backup_id = sched.run(job_id)
    [run] = runs(api, job_id)
    assert run['job_id'] == job_id
    assert run['client_id'] == sched.client_id
    assert run['status'] == 'completed'
    assert run['result'] == 'success'
    assert run['start'] == started
    assert run['end'] == started + 30
    assert run['backups'] == [backup_id]
    # the same report again (a retry) writes no second record
    sched.end(job_id)
    assert len(runs(api, job_id)) == 1


def test_newest_first_paging_and_search(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job()
    starts = []
    for result in ('success', 'fail', 'success'):
        clock.advance(INTERVAL - 30)
        sched.poll()
        starts.append(sched.run(job_id, result)[0])
    listed = runs(api, job_id)
    assert [run['start'] for run in listed] == starts[::-1]
    assert [run['result'] for run in listed] == ['success', 'fail',
                                                 'success']
    page = runs(api, job_id, query='limit=1&offset=1')
    assert [run['start'] for run in page] == [starts[1]]
    failed = runs(api, job_id, search={'match': [{'result': 'fail'}]})
    assert [run['start'] for run in failed] == [starts[1]]


def test_records_outlive_job_changes(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job()
    clock.advance(INTERVAL)
    sched.poll()
    sched.run(job_id)
    resp = api.patch('jobs', job_id, json={'description': 'renamed'})
    assert resp.status_code == 200
    [run] = runs(api, job_id)
    assert run['description'] == 'nightly etc backup'


def test_a_silent_run_is_lost_and_the_job_stale(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job(run_lease=300,
                       job_schedule={'schedule_interval': '1 days'})
    clock.advance(60)
    sched.poll()
    started = sched.start(job_id)
    clock.advance(200)
    [run] = runs(api, job_id)
    assert run['status'] == 'running'
    clock.advance(200)
    [run] = runs(api, job_id)
    assert run['status'] == 'lost'
    assert run['result'] == 'lost'
    assert run['end'] == started + 300
    # the job document the scheduler reads is unchanged
    assert api.doc('jobs', job_id)['job_schedule']['status'] == 'running'
    cover = api.get('coverage', query=f'job_id={job_id}').json
    [job] = cover['jobs']
    assert job['stale'] is True
    assert job['lost_7d'] == 1
    # a late report from the scheduler still wins
    sched.end(job_id, 'fail')
    [run] = runs(api, job_id)
    assert (run['status'], run['result']) == ('completed', 'fail')
    assert run['reported_after_lost'] is True


def test_missed_runs_and_their_reasons(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job()   # created at t0: runs expected t0+600, +1200...
    t0 = int(clock())
    # first run on time
    clock.advance(INTERVAL + 5)
    sched.poll()
    sched.run(job_id, seconds=10)
    # the client polls but nothing starts at t0+1200: not_started
    for _ in range(12):
        clock.advance(60)
        sched.poll()
    # then the client goes silent across t0+1800 and t0+2400
    clock.advance(INTERVAL * 2)
    sched.poll()
    listed = runs(api, job_id)
    missed = {run['expected_at']: run['reason'] for run in listed
              if run['status'] == 'missed'}
    assert missed == {t0 + 1200: 'not_started',
                      t0 + 1800: 'client_offline',
                      t0 + 2400: 'client_offline'}, listed
    # read again: the same records, no duplicates
    assert len(runs(api, job_id)) == len(listed)
    # an overlap: a run still going at the next expected time
    clock.advance(INTERVAL - (int(clock()) - t0) % INTERVAL + 5)
    sched.poll()
    sched.start(job_id)
    for _ in range(12):
        clock.advance(60)
        sched.poll()
    sched.end(job_id)
    clock.advance(GRACE + 1)
    sched.poll()
    reasons = [run['reason'] for run in runs(api, job_id)
               if run['status'] == 'missed']
    assert 'overlap' in reasons, runs(api, job_id)


def test_runs_of_an_unknown_or_foreign_job(api, clock):
    assert_error(api.get('jobs', 'nope', 'runs'), 404)
    sched = Scheduler(api, clock)
    job_id = sched.job()
    other = api.as_(user='mallory', project=helpers.PROJECT_B)
    assert_error(other.get('jobs', job_id, 'runs'), 404)


@pytest.mark.parametrize('query', ['limit=0', 'limit=x', 'offset=-1',
                                   'limit=1&limit=2'])
def test_bad_paging_is_a_400(api, clock, query):
    job_id = Scheduler(api, clock).job()
    assert_error(api.get('jobs', job_id, 'runs', query=query), 400)


def test_bad_search_is_a_400(api, clock):
    job_id = Scheduler(api, clock).job()
    assert_error(api.get('jobs', job_id, 'runs', json={'nope': 1}), 400)
    assert_error(api.get('jobs', job_id, 'runs', body='{'), 400)


@pytest.mark.parametrize('field,value', [
    ('run_lease', 0), ('run_lease', 'x'), ('run_lease', True),
    ('rpo', -5), ('rpo', 1.5), ('rpo', 10 ** 12)])
def test_bad_lease_or_rpo_is_a_400(api, clock, field, value):
    sched = Scheduler(api, clock)
    resp = api.post('jobs', json=helpers.job_body(sched.client_id,
                                                  **{field: value}))
    assert_error(resp, 400)
    job_id = sched.job()
    assert_error(api.patch('jobs', job_id, json={field: value}), 400)


def test_readers_may_read_runs_but_not_write(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job()
    reader = api.as_(roles='reader')
    assert reader.get('jobs', job_id, 'runs').status_code == 200
    nobody = api.as_(roles='')
    assert_error(nobody.get('jobs', job_id, 'runs'), 403)


def test_a_read_sees_the_poll_being_written(api, clock, monkeypatch):
    # the background thread has taken the poll and is still writing it
    # when the operator reads: the read waits for it
    from freezer_api.core import presence
    write = presence.PresenceManager._write

    def slow_write(self, *args):
        time.sleep(0.3)
        return write(self, *args)

    monkeypatch.setattr(presence.PresenceManager, '_write', slow_write)
    sched = Scheduler(api, clock)
    sched.job()
    sched.poll()
    [client] = api.get('coverage').json['clients']
    assert client['last_seen'] is not None, client
    assert client['offline'] is False
