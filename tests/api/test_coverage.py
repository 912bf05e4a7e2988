"""GET /coverage (issue 15, point 5), in both versions and on every store
of the HTTP suite, with a scheduler played by hand (tests/api/
test_job_runs.py) and the test clock."""

import collections
import time

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error
from tests.api.test_job_runs import INTERVAL
from tests.api.test_job_runs import OFFLINE_AFTER
from tests.api.test_job_runs import Scheduler
# the [health] options of the runs tests
from tests.api.test_job_runs import conf  # noqa: F401


def coverage(api, query=None, **kw):
    resp = api.get('coverage', query=query, **kw)
    assert resp.status_code == 200, resp.text
    return resp.json


def job_entry(answer, job_id):
    [entry] = [job for job in answer['jobs'] if job['job_id'] == job_id]
    return entry


def test_a_good_job_a_failing_job_and_an_offline_client(api, clock):
    sched = Scheduler(api, clock)
    good = sched.job(description='good')
    bad = sched.job(description='bad', rpo=900)
    clock.advance(INTERVAL)
    sched.poll()
    sched.run(good, seconds=20)
    sched.run(bad, 'fail', seconds=20)
    answer = coverage(api)
    entry = job_entry(answer, good)
    assert entry['last_success']['age'] == 20
    assert entry['rpo'] == 2 * INTERVAL
    assert entry['rpo_source'] == 'default'
    assert entry['breached'] is False
    assert entry['client_offline'] is False
    assert entry['next_run'] is not None
    entry = job_entry(answer, bad)
    assert entry['last_success'] is None
    assert (entry['rpo'], entry['rpo_source']) == (900, 'job')
    # never succeeded: counted from the job's creation (640 s ago)
    assert entry['breached'] is False
    [client] = answer['clients']
    assert client['client_id'] == sched.client_id
    assert client['jobs'] == 2 and client['offline'] is False

    # the scheduler stops polling: the failing job breaches, runs are
    # missed with client_offline, the client is offline
    clock.advance(3 * INTERVAL)
    answer = coverage(api)
    entry = job_entry(answer, bad)
    assert entry['breached'] is True
    assert entry['missed_7d'] >= 2
    assert entry['client_offline'] is True
    assert job_entry(answer, good)['breached'] is True   # 1820 s > 1200
    assert answer['clients'][0]['offline'] is True
    assert answer['clients'][0]['last_seen_age'] > OFFLINE_AFTER
    assert answer['summary']['breached'] == 2
    reasons = {run['reason'] for run in api.get(
        'jobs', bad, 'runs').json['runs'] if run['status'] == 'missed'}
    assert reasons == {'client_offline'}


def test_filters_and_paging(api, clock):
    sched = Scheduler(api, clock)
    other = Scheduler(api, clock, host='node2')
    first = sched.job()
    second = other.job(rpo=60)
    clock.advance(120)
    assert [j['job_id'] for j in coverage(
        api, 'breached=true')['jobs']] == [second]
    answer = coverage(api, f'client_id={other.client_id}')
    assert [j['job_id'] for j in answer['jobs']] == [second]
    assert [c['client_id'] for c in answer['clients']] == [other.client_id]
    assert [j['job_id'] for j in coverage(
        api, f'job_id={first}')['jobs']] == [first]
    assert coverage(api, 'job_id=nope')['jobs'] == []
    paged = coverage(api, 'limit=1&offset=1')
    assert len(paged['jobs']) == 1 and paged['summary']['jobs'] == 2
    searched = coverage(api, json={'match': [{'rpo': 60}]})
    assert [j['job_id'] for j in searched['jobs']] == [second]


def test_other_projects_are_not_shown(api, clock):
    Scheduler(api, clock).job()
    other = api.as_(user='bob', project=helpers.PROJECT_B)
    assert coverage(other)['jobs'] == []


def test_all_projects_is_for_admins(api, clock):
    Scheduler(api, clock).job()
    assert_error(api.get('coverage', query='all_projects=true'), 403)
    admin = api.as_(user='root', project=helpers.PROJECT_B, roles='admin')
    answer = coverage(admin, 'all_projects=true')
    assert [j['project_id'] for j in answer['jobs']] == [api.project]


def test_readers_may_read_it(api, clock):
    Scheduler(api, clock).job()
    reader = api.as_(roles='reader')
    assert len(coverage(reader)['jobs']) == 1
    assert_error(api.as_(roles='').get('coverage'), 403)


@pytest.mark.parametrize('query', [
    'breached=maybe', 'client_id=', 'job_id=', 'job_id=a&job_id=b',
    'limit=0', 'offset=-1', 'all_projects=2'])
def test_bad_input_is_a_400(api, query):
    assert_error(api.get('coverage', query=query), 400)


def test_bad_search_is_a_400(api):
    assert_error(api.get('coverage', json={'match': 'x'}), 400)
    assert_error(api.get('coverage', json=[1]), 400)


# -- the per-job summaries (kind job_health) --------------------------------

@pytest.fixture
def list_reads(storage, monkeypatch):
    """How many times the documents of each kind were listed."""
    counted: collections.Counter = collections.Counter()
    listing = storage.list

    def counting(kind, *args, **kwargs):
        counted[kind] += 1
        return listing(kind, *args, **kwargs)

    monkeypatch.setattr(storage, 'list', counting)
    return counted


def test_a_job_not_due_is_read_from_its_summary(api, clock, list_reads):
    sched = Scheduler(api, clock)
    job_id = sched.job()
    clock.advance(INTERVAL)
    sched.poll()
    sched.run(job_id, seconds=20)
    coverage(api)
    settled = list_reads['runs']
    assert settled > 0      # no summary yet: the job was settled
    # a run reported since: the ledger noted it in the summary
    clock.advance(10)
    sched.poll()
    sched.run(job_id, 'fail', seconds=5)
    sched.run(job_id, seconds=7)
    entry = job_entry(coverage(api), job_id)
    assert list_reads['runs'] == settled
    assert entry['last_success']['age'] == 0
    assert entry['missed_7d'] == 0 and entry['stale'] is False
    # the summary's next check came: settled again
    clock.advance(INTERVAL + 60)
    coverage(api)
    assert list_reads['runs'] > settled


def test_a_run_going_on_too_long_is_stale_from_its_summary(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job(run_lease=120)
    sched.poll()
    coverage(api)
    sched.start(job_id)
    assert job_entry(coverage(api), job_id)['stale'] is False
    clock.advance(121)
    sched.poll()
    entry = job_entry(coverage(api), job_id)
    assert entry['stale'] is True and entry['lost_7d'] == 1


def test_a_changed_schedule_is_settled_again(api, clock):
    sched = Scheduler(api, clock)
    job_id = sched.job()
    sched.poll()
    assert job_entry(coverage(api), job_id)['rpo'] == 2 * INTERVAL
    resp = api.patch('jobs', job_id, json={'job_schedule': {
        'schedule_interval': '30 minutes'}})
    assert resp.status_code == 200, resp.text
    assert job_entry(coverage(api), job_id)['rpo'] == 2 * 1800


def test_a_report_during_a_settle_is_not_overwritten(api, clock, api_app,
                                                     monkeypatch):
    sched = Scheduler(api, clock)
    job_id = sched.job()
    sched.poll()
    coverage(api)   # the summary is made
    clock.advance(INTERVAL + 61)    # and is due again
    sched.poll()
    services = helpers.services_of(api_app)
    settle = services.runs._settle
    reported = []

    def settle_then_report(job, *args, **kwargs):
        answer = settle(job, *args, **kwargs)
        if not reported:
            # the scheduler reports a run between the settle's reading
            # and its write of the summary
            reported.append(sched.run(job_id, seconds=3))
        return answer

    monkeypatch.setattr(services.runs, '_settle', settle_then_report)
    entry = job_entry(coverage(api), job_id)
    assert reported
    assert entry['last_success']['age'] == 0
    # the summary counts the run (the settle had read the runs before it)
    figures = services.coverage.figures(storage_scope(api))
    assert figures['freezer_backup_runs'] == [
        ({'project': api.project, 'result': 'success'}, 1)]


def test_the_sweep_settles_purges_and_forgets(api, clock, api_app, storage,
                                              list_reads):
    services = helpers.services_of(api_app)
    sched = Scheduler(api, clock)
    kept, gone = sched.job(), sched.job()
    sched.poll()
    sched.run(kept, seconds=5)
    assert services.sweeper.sweep() == {'settled': 2, 'purged': 0}
    assert services.sweeper.sweep() == {'settled': 0, 'purged': 0}
    # the scheduler goes away: the sweep writes the missed runs, and a
    # read after it settles nothing
    clock.advance(3 * INTERVAL)
    assert services.sweeper.sweep()['settled'] == 2
    reads = list_reads['runs']
    entry = job_entry(coverage(api), kept)
    assert list_reads['runs'] == reads
    assert entry['missed_7d'] >= 2 and entry['client_offline'] is True
    # a job removed: its summary goes with the next sweep
    assert api.delete('jobs', gone).status_code == 204
    services.sweeper.sweep()
    assert set(services.runs.summaries(storage_scope(api))) == {kept}
    # past the retention (90 days): the records are removed
    clock.advance(91 * 86400)
    assert services.sweeper.sweep()['purged'] >= 3
    assert all(run['status'] == 'missed' and run['start'] == -1
               for run in api.get('jobs', kept, 'runs').json['runs'])


def storage_scope(api):
    from freezer_api.storage.base import Scope
    return Scope(api.project)


def test_a_quick_sweep_looks_at_due_summaries_and_changed_jobs(
        api, clock, api_app, list_reads):
    services = helpers.services_of(api_app)
    sweeper = services.sweeper
    sched = Scheduler(api, clock)
    kept, moved, gone = sched.job(), sched.job(), sched.job()
    sched.poll()
    sched.run(kept, seconds=5)
    # the jobs were created here: a quick sweep makes their summaries
    assert sweeper.sweep(full=False) == {'settled': 3, 'purged': 0}
    jobs_listed = list_reads['jobs']   # the scheduler's poll
    # nothing due, nothing changed
    assert sweeper.sweep(full=False)['settled'] == 0
    # a scheduler's run reports are noted by the ledger: not due
    sched.run(kept, seconds=5)
    assert sweeper.sweep(full=False)['settled'] == 0
    # a schedule changed through the API is looked at at once
    assert api.patch('jobs', moved, json={'job_schedule': {
        'schedule_interval': '30 minutes'}}).status_code == 200
    assert sweeper.sweep(full=False)['settled'] == 1
    summary = services.runs.summaries(storage_scope(api))[moved]
    assert summary['interval'] == 1800
    # the scheduler goes away: summaries fall due by themselves
    clock.advance(6 * INTERVAL)
    assert sweeper.sweep(full=False)['settled'] == 3
    # a job removed: its summary goes with the next quick sweep
    assert api.delete('jobs', gone).status_code == 204
    sweeper.sweep(full=False)
    assert set(services.runs.summaries(storage_scope(api))) == {
        kept, moved}
    # the quick sweeps never listed the jobs
    assert list_reads['jobs'] == jobs_listed
    # a full sweep does
    sweeper.sweep()
    assert list_reads['jobs'] > jobs_listed


def test_a_quick_sweep_misses_nothing_a_full_one_settles(
        api, clock, api_app, storage):
    """A job changed behind this process's back (another process, or
    an older release) is due all the same: the full sweep settles it."""
    services = helpers.services_of(api_app)
    sched = Scheduler(api, clock)
    job_id = sched.job()
    sched.poll()
    services.sweeper.sweep()
    # another process changes the schedule: this one was not told
    assert api.patch('jobs', job_id, json={'job_schedule': {
        'schedule_interval': '30 minutes'}}).status_code == 200
    services.jobs.ledger.take_changed()
    assert services.sweeper.sweep(full=False)['settled'] == 0
    assert services.sweeper.sweep(full=True)['settled'] == 1


def test_the_sweep_runs_in_the_background(api, clock, api_app,
                                          monkeypatch):
    services = helpers.services_of(api_app)
    sweeper = services.sweeper
    swept = []
    monkeypatch.setattr(sweeper, 'interval', 0.01)
    monkeypatch.setattr(sweeper, 'sweep', lambda full: swept.append(full))
    try:
        coverage(api)   # a request starts it in this process
        for _ in range(1000):
            if len(swept) > sweeper.FULL_EVERY:
                break
            time.sleep(0.01)
        # the first sweep of a process is full, then every FULL_EVERY-th
        assert swept[:sweeper.FULL_EVERY + 1] == [True] + [False] * (
            sweeper.FULL_EVERY - 1) + [True]
    finally:
        sweeper.stop()
