"""GET /coverage (issue 15, point 5), in both versions and on every store
of the HTTP suite, with a scheduler played by hand (tests/api/
test_job_runs.py) and the test clock."""

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
