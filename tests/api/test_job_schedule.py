"""GET /jobs/{id}/schedule and job_schedule.schedule_timezone (issue 15,
point 1), in both versions."""

import falcon.testing
import pytest

from freezer_api.api import app as app_module
from freezer_api.api import context
from tests import conftest
from tests.api import helpers
from tests.api.helpers import assert_error

# the test clock: 2023-11-14T22:13:20Z
NOW = 1_700_000_000


def make_job(api, **schedule):
    client_id = helpers.client_id_for(api.project, 'node1')
    if not api.get('clients', client_id).status_code == 200:
        helpers.register_client(api, 'node1')
    return helpers.create(api, 'jobs', helpers.job_body(
        client_id, job_schedule=schedule))


def test_cron_in_the_job_time_zone(api):
    job_id = make_job(api, schedule_hour='3', schedule_minute='0',
                      schedule_timezone='Europe/Berlin')
    resp = api.get('jobs', job_id, 'schedule', query='count=3')
    assert resp.status_code == 200, resp.text
    assert resp.json == {
        'job_id': job_id, 'timezone': 'Europe/Berlin',
        'timezone_source': 'job',
        'trigger': {'kind': 'cron',
                    'fields': {'hour': '3', 'minute': '0'}},
        'next_run': '2023-11-15T02:00:00Z',
        'runs': [{'utc': f'2023-11-{day}T02:00:00Z',
                  'local': f'2023-11-{day}T03:00:00+01:00',
                  'utc_offset': '+01:00', 'dst': None}
                 for day in (15, 16, 17)]}
    # the zone is stored as given, and read back
    assert api.doc('jobs', job_id)['job_schedule'][
        'schedule_timezone'] == 'Europe/Berlin'


def test_interval_and_default_count(api, clock):
    job_id = make_job(api, schedule_interval='1 hours',
                      schedule_start_date='2024-01-01T02:00:00')
    answer = api.get('jobs', job_id, 'schedule').json
    assert answer['timezone'] == 'UTC'
    assert answer['timezone_source'] == 'default'
    # a start date without offset is UTC, as the scheduler reads it
    assert answer['next_run'] == '2024-01-01T02:00:00Z'
    assert len(answer['runs']) == 10
    assert answer['runs'][9]['utc'] == '2024-01-01T11:00:00Z'
    assert answer['runs'][0]['utc_offset'] == '+00:00'
    # without a start date: one interval after the job was armed
    job_id = make_job(api, schedule_interval='1 hours')
    answer = api.get('jobs', job_id, 'schedule', query='count=2').json
    assert [run['utc'] for run in answer['runs']] == [
        '2023-11-14T23:13:20Z', '2023-11-15T00:13:20Z']
    clock.advance(3 * 3600 + 1)
    answer = api.get('jobs', job_id, 'schedule', query='count=1').json
    assert answer['next_run'] == '2023-11-15T02:13:20Z'


def test_gap_flagged_in_new_york(api, clock):
    # 2024-03-10 02:30 does not exist in America/New_York
    job_id = make_job(api, schedule_date='2024-03-10T02:30:00',
                      schedule_timezone='America/New_York')
    answer = api.get('jobs', job_id, 'schedule').json
    assert answer['trigger'] == {'kind': 'date',
                                 'run_date': '2024-03-10T02:30:00'}
    assert answer['runs'] == [{'utc': '2024-03-10T07:30:00Z',
                               'local': '2024-03-10T03:30:00-04:00',
                               'utc_offset': '-04:00', 'dst': 'gap'}]


def test_patch_and_replace_check_the_zone(api):
    job_id = make_job(api, schedule_interval='1 days')
    resp = api.patch('jobs', job_id, json={
        'job_schedule': {'schedule_timezone': 'Australia/Sydney'}})
    assert resp.status_code == 200, resp.text
    answer = api.get('jobs', job_id, 'schedule').json
    assert answer['timezone'] == 'Australia/Sydney'
    assert answer['runs'][0]['utc_offset'] == '+11:00'
    before = api.doc('jobs', job_id)
    for bad in ('Mars/Olympus', 'not a zone', '../../etc/passwd', '', 7):
        resp = api.patch('jobs', job_id, json={
            'job_schedule': {'schedule_timezone': bad}})
        assert_error(resp, 400)
        body = dict(before['job_schedule'], schedule_timezone=bad)
        assert_error(api.post('jobs', job_id, json=helpers.job_body(
            before['client_id'], job_schedule=body)), 400)
    assert api.doc('jobs', job_id) == before
    resp = api.patch('jobs', job_id, json={
        'job_schedule': {'schedule_timezone': 'Mars/Olympus'}})
    assert 'Mars/Olympus' in resp.json['description']


def test_create_refuses_an_unknown_zone(api):
    client_id = helpers.register_client(api, 'node1')
    resp = api.post('jobs', json=helpers.job_body(
        client_id, job_schedule={'schedule_timezone': 'Europe/Nowhere'}))
    assert_error(resp, 400)
    assert 'Europe/Nowhere' in resp.json['description']
    assert api.list('jobs') == []


@pytest.mark.parametrize('query', ['count=0', 'count=101', 'count=x',
                                   'count=1&count=2', 'count=-3'])
def test_bad_count(api, query):
    job_id = make_job(api, schedule_interval='1 days')
    assert_error(api.get('jobs', job_id, 'schedule', query=query), 400)


def test_count_bounds(api):
    job_id = make_job(api, schedule_interval='continuous')
    answer = api.get('jobs', job_id, 'schedule', query='count=100').json
    assert len(answer['runs']) == 100
    assert answer['trigger']['continuous'] is True
    answer = api.get('jobs', job_id, 'schedule', query='count=1').json
    assert len(answer['runs']) == 1


def test_unknown_or_foreign_job(api):
    assert_error(api.get('jobs', 'nope', 'schedule'), 404)
    job_id = make_job(api, schedule_interval='1 days')
    other = api.as_(user='bob', project='proj-b', url_project='proj-b')
    assert_error(other.get('jobs', job_id, 'schedule'), 404)


def test_readers_may_read_it(api):
    job_id = make_job(api, schedule_interval='1 days')
    reader = api.as_(roles='reader')
    assert reader.get('jobs', job_id, 'schedule').status_code == 200
    nobody = api.as_(roles='other')
    assert_error(nobody.get('jobs', job_id, 'schedule'), 403)


def test_a_schedule_the_scheduler_cannot_read(api):
    job_id = make_job(api, schedule_hour='25')
    resp = api.get('jobs', job_id, 'schedule')
    assert_error(resp, 422)
    assert 'freezer-scheduler cannot schedule' in resp.json['description']


def test_configured_default_zone(tmp_path, storage, clock, policy_enforcer):
    conf = conftest.make_conf(tmp_path, default_schedule_timezone='Asia/Tokyo')
    app = context.NoAuthMiddleware(app_module.create_app(
        conf, storage, enforcer=policy_enforcer, clock=clock), conf)
    api = helpers.Api(falcon.testing.TestClient(app), 'v2')
    job_id = make_job(api, schedule_hour='9', schedule_minute='0')
    answer = api.get('jobs', job_id, 'schedule', query='count=1').json
    assert answer['timezone'] == 'Asia/Tokyo'
    assert answer['runs'] == [{'utc': '2023-11-15T00:00:00Z',
                               'local': '2023-11-15T09:00:00+09:00',
                               'utc_offset': '+09:00', 'dst': None}]


def test_unknown_configured_zone_stops_the_start(tmp_path, storage, clock):
    conf = conftest.make_conf(tmp_path, default_schedule_timezone='Nowhere')
    with pytest.raises(ValueError, match='default_schedule_timezone'):
        app_module.create_app(conf, storage, clock=clock)


def test_sessions_check_the_zone_they_give_their_jobs(api):
    # a session's schedule is merged into each member job's
    resp = api.post('sessions', json=helpers.session_body(
        schedule={'schedule_interval': '1 days',
                  'schedule_timezone': 'Moon/Crater'}))
    assert_error(resp, 400)
    assert 'Moon/Crater' in resp.json['description']
    assert api.list('sessions') == []
    session_id = helpers.create(api, 'sessions', helpers.session_body(
        schedule={'schedule_interval': '1 days',
                  'schedule_timezone': 'America/New_York'}))
    before = api.doc('sessions', session_id)
    assert_error(api.patch('sessions', session_id, json={
        'schedule': {'schedule_timezone': 'Moon/Crater'}}), 400)
    assert_error(api.post('sessions', session_id, json=helpers.session_body(
        schedule={'schedule_timezone': 'Moon/Crater'})), 400)
    assert api.doc('sessions', session_id) == before
    job_id = make_job(api, schedule_interval='1 hours')
    resp = api.put('sessions', session_id, 'jobs', job_id)
    assert resp.status_code == 204, resp.text
    answer = api.get('jobs', job_id, 'schedule', query='count=1').json
    assert answer['timezone'] == 'America/New_York'
    assert answer['trigger']['seconds'] == 86400
