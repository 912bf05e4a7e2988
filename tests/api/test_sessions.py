"""/sessions in both versions: documents, membership and action parsing
(spec §1.3 #22-30, §2.5, §3.1, §3.2, D9, D10, D14)."""

import copy

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error

NOW = 1_700_000_000


@pytest.fixture
def client_id(api):
    return helpers.register_client(api, 'node1')


@pytest.mark.parametrize('slash', [False, True])
def test_create_get_list_delete(api, slash):
    body = helpers.session_body()
    resp = api.post('sessions', json=body, slash=slash)
    assert resp.status_code == 201, resp.text
    assert list(resp.json) == ['session_id']
    session_id = resp.json['session_id']
    assert helpers.HEX_ID.match(session_id)

    resp = api.get('sessions', session_id)
    assert resp.status_code == 200
    doc = resp.json
    assert doc['session_id'] == session_id
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert doc['status'] == 'active'
    assert doc['session_tag'] == 0
    assert doc['hold_off'] == 30
    assert doc['jobs'] == {}
    assert doc['time_start'] == -1
    # upstream's defaults, shown as upstream does
    assert doc['time_end'] == -1
    assert doc['time_started'] == -1
    assert doc['time_ended'] == -1
    assert doc['schedule'] == body['schedule']
    assert doc['description'] == body['description']
    assert isinstance(doc['_version'], int)

    resp = api.get('sessions', slash=slash)
    assert resp.json == {'sessions': [helpers.strip_version(doc)]}

    assert api.delete('sessions', session_id, slash=slash).status_code == 204
    assert_error(api.get('sessions', session_id), 404)
    assert_error(api.delete('sessions', session_id), 404)
    assert api.list('sessions') == []


def test_create_ignores_ids_and_jobs(api):
    session_id = helpers.make_session(
        api, session_id='mine', user_id='mallory', project_id='elsewhere',
        jobs={'some-job': {'client_id': 'x', 'status': 'running'}})
    assert session_id != 'mine'
    doc = api.doc('sessions', session_id)
    assert doc['jobs'] == {}
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert_error(api.get('sessions', 'mine'), 404)


def test_create_with_hold_off(api):
    session_id = helpers.make_session(api, hold_off=120)
    assert api.doc('sessions', session_id)['hold_off'] == 120


@pytest.mark.parametrize('hold_off', [0, -1, -86400, 10 ** 12])
def test_hold_off_takes_any_integer(api, hold_off):
    # as upstream: 0 or less means no hold-off window
    session_id = helpers.make_session(api, hold_off=hold_off)
    assert api.doc('sessions', session_id)['hold_off'] == hold_off
    resp = api.patch('sessions', session_id, json={'hold_off': -7})
    assert resp.status_code == 200, resp.text
    assert api.doc('sessions', session_id)['hold_off'] == -7


def test_member_job_entry_has_upstreams_defaults(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    # a replaced job's schedule has no times (the body's schedule is kept)
    resp = api.post('jobs', job_id, json=helpers.job_body(client_id))
    assert resp.status_code == 201, resp.text
    assert 'time_started' not in api.doc('jobs', job_id)['job_schedule']
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    entry = api.doc('sessions', session_id)['jobs'][job_id]
    assert entry == {'client_id': client_id, 'status': '', 'result': '',
                     'time_started': -1, 'time_ended': -1}
    listed = api.list('sessions')[0]['jobs'][job_id]
    assert listed == entry


@pytest.mark.parametrize('change', [
    {'schedule': helpers._MISSING},
    {'schedule': None},
    {'schedule': 'daily'},
    {'schedule': []},
    {'schedule': {'bogus': 1}},
    {'schedule': {'schedule_interval': 'sometimes'}},
    {'schedule': {'status': 'bogus'}},
    {'hold_off': 'thirty'},
    {'hold_off': 1.5},
    {'hold_off': None},
    {'session_tag': 'x'},
    {'session_tag': -1},
    {'description': 5},
    {'status': 'bogus'},
    {'result': 'bogus'},
    {'time_start': 'now'},
    {'time_end': []},
])
def test_create_invalid(api, change):
    body = helpers.session_body()
    for key, value in change.items():
        if value is helpers._MISSING:
            del body[key]
        else:
            body[key] = value
    assert_error(api.post('sessions', json=body), 400)
    assert api.list('sessions') == []


@pytest.mark.parametrize('body', [{}, [], 'x', 5, None,
                                  [helpers.session_body()]])
def test_create_not_an_object(api, body):
    assert_error(api.post('sessions', json=body), 400)
    assert api.list('sessions') == []


@pytest.mark.parametrize('slash', [False, True])
def test_replace_keeps_membership(api, client_id, slash):
    session_id = helpers.make_session(api, extra='old')
    job_id = helpers.make_job(api, client_id)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    before = api.doc('sessions', session_id)
    new = {'description': 'new', 'schedule': {'schedule_date':
                                              '2030-01-01T00:00:00'},
           'jobs': {}}
    resp = api.post('sessions', session_id, json=new, slash=slash)
    assert resp.status_code == 201, resp.text
    assert resp.json == {'session_id': session_id,
                         'version': before['_version'] + 1}
    doc = api.doc('sessions', session_id)
    assert doc['description'] == 'new'
    assert doc['schedule'] == new['schedule']
    assert list(doc['jobs']) == [job_id]
    assert 'extra' not in doc
    assert doc['user_id'] == 'alice'
    assert doc['session_id'] == session_id


def test_replace_unknown_id_creates(api):
    resp = api.post('sessions', 'my-session', json=helpers.session_body())
    assert resp.status_code == 201, resp.text
    assert resp.json['session_id'] == 'my-session'
    doc = api.doc('sessions', 'my-session')
    assert doc['jobs'] == {}
    assert doc['status'] == 'active'


def test_replace_after_delete(api):
    session_id = helpers.make_session(api)
    assert api.delete('sessions', session_id).status_code == 204
    resp = api.post('sessions', session_id,
                    json=helpers.session_body(description='again'))
    assert resp.status_code == 201, resp.text
    assert api.doc('sessions', session_id)['description'] == 'again'


@pytest.mark.parametrize('body', [{}, {'description': 'no schedule'},
                                  {'schedule': 'x'}, [], None])
def test_replace_invalid(api, body):
    session_id = helpers.make_session(api)
    before = api.doc('sessions', session_id)
    assert_error(api.post('sessions', session_id, json=body), 400)
    assert api.doc('sessions', session_id) == before


def test_replace_if_match(api):
    session_id = helpers.make_session(api)
    before = api.doc('sessions', session_id)
    assert_error(api.post('sessions', session_id,
                          json=helpers.session_body(description='x'),
                          headers={'If-Match': '77'}), 412)
    assert api.doc('sessions', session_id) == before


def test_patch_deep_merges(api):
    session_id = helpers.make_session(api)
    before = api.doc('sessions', session_id)
    resp = api.patch('sessions', session_id, json={
        'schedule': {'schedule_hour': '3'}, 'hold_off': 10,
        'description': 'patched'})
    assert resp.status_code == 200, resp.text
    assert resp.json == {'session_id': session_id,
                         'version': before['_version'] + 1}
    expected = copy.deepcopy(before)
    expected['schedule']['schedule_hour'] = '3'
    expected.update(hold_off=10, description='patched',
                    _version=before['_version'] + 1)
    assert api.doc('sessions', session_id) == expected


def test_patch_ignores_server_fields(api):
    session_id = helpers.make_session(api)
    resp = api.patch('sessions', session_id, json={
        'session_id': 'x', 'user_id': 'mallory', 'project_id': 'elsewhere',
        'description': 'd'})
    assert resp.status_code == 200, resp.text
    doc = api.doc('sessions', session_id)
    assert doc['session_id'] == session_id
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert doc['description'] == 'd'


@pytest.mark.parametrize('patch', [
    {'schedule': 'x'}, {'schedule': {'nope': 1}}, {'hold_off': 'x'},
    {'session_tag': 'x'}, {'status': 'paused'}, {'result': 'great'},
    {'description': {}}, [], 'x', None,
])
def test_patch_invalid(api, patch):
    session_id = helpers.make_session(api)
    before = api.doc('sessions', session_id)
    assert_error(api.patch('sessions', session_id, json=patch), 400)
    assert api.doc('sessions', session_id) == before


def test_patch_unknown(api):
    assert_error(api.patch('sessions', 'f' * 32,
                           json={'description': 'x'}), 404)


def test_patch_if_match(api):
    session_id = helpers.make_session(api)
    version = api.doc('sessions', session_id)['_version']
    assert_error(api.patch('sessions', session_id, json={'hold_off': 1},
                           headers={'If-Match': str(version + 1)}), 412)
    assert api.doc('sessions', session_id)['hold_off'] == 30


# membership (D10) ----------------------------------------------------------

def test_add_job(api, client_id):
    session_id = helpers.make_session(
        api, schedule={'schedule_interval': '2 hours',
                       'schedule_start_date': '2024-06-01T00:00:00'})
    job_id = helpers.make_job(api, client_id, job_schedule={
        'schedule_interval': '1 days', 'status': 'scheduled',
        'schedule_hour': '4'})
    job_before = api.doc('jobs', job_id)
    resp = api.put('sessions', session_id, 'jobs', job_id)
    assert resp.status_code == 204, resp.text
    assert resp.text == ''

    job = api.doc('jobs', job_id)
    assert job['session_id'] == session_id
    assert job['session_tag'] == 0
    assert job['job_schedule'] == {
        **job_before['job_schedule'], 'schedule_interval': '2 hours',
        'schedule_start_date': '2024-06-01T00:00:00'}
    session = api.doc('sessions', session_id)
    assert list(session['jobs']) == [job_id]
    assert session['jobs'][job_id]['client_id'] == client_id


def test_add_job_takes_current_session_tag(api, client_id, clock):
    session_id = helpers.make_session(api)
    first = helpers.make_job(api, client_id)
    second = helpers.make_job(api, client_id)
    assert api.put('sessions', session_id, 'jobs', first).status_code == 204
    resp = api.post('sessions', session_id, 'action',
                    json={'start': {'job_id': first, 'current_tag': 0}})
    assert resp.json == {'result': 'success', 'session_tag': 1}
    assert api.put('sessions', session_id, 'jobs',
                   second).status_code == 204
    assert api.doc('jobs', second)['session_tag'] == 1


def test_add_job_twice_is_idempotent(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    session = api.doc('sessions', session_id)
    job = api.doc('jobs', job_id)
    assert api.put('sessions', session_id, 'jobs', job_id,
                   slash=True).status_code == 204
    assert api.doc('sessions', session_id)['jobs'] == session['jobs']
    assert helpers.strip_version(api.doc('jobs', job_id)) == \
        helpers.strip_version(job)


def test_add_job_moves_it_from_its_previous_session(api, client_id):
    first = helpers.make_session(api)
    second = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    assert api.put('sessions', first, 'jobs', job_id).status_code == 204
    assert api.put('sessions', second, 'jobs', job_id).status_code == 204
    assert api.doc('jobs', job_id)['session_id'] == second
    assert list(api.doc('sessions', second)['jobs']) == [job_id]
    assert api.doc('sessions', first)['jobs'] == {}


def test_add_unknown_job_or_to_unknown_session(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    before = helpers.snapshot(api)
    assert_error(api.put('sessions', session_id, 'jobs', 'f' * 32), 404)
    assert_error(api.put('sessions', 'f' * 32, 'jobs', job_id), 404)
    assert helpers.snapshot(api) == before


def test_add_deleted_job(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    assert api.delete('jobs', job_id).status_code == 204
    before = api.doc('sessions', session_id)
    assert_error(api.put('sessions', session_id, 'jobs', job_id), 404)
    assert api.doc('sessions', session_id) == before


def test_remove_job(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id, job_schedule={
        'schedule_interval': '1 days', 'status': 'scheduled',
        'event': 'start', 'result': 'success'})
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    in_session = api.doc('jobs', job_id)
    resp = api.delete('sessions', session_id, 'jobs', job_id)
    assert resp.status_code == 204, resp.text
    job = api.doc('jobs', job_id)
    assert job['session_id'] == ''
    assert job['session_tag'] == 0
    assert job['job_schedule'] == {**in_session['job_schedule'],
                                   'event': 'stop'}
    assert api.doc('sessions', session_id)['jobs'] == {}


def test_remove_job_never_added(api, client_id):
    session_id = helpers.make_session(api)
    other = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    assert api.put('sessions', other, 'jobs', job_id).status_code == 204
    before = helpers.snapshot(api)
    resp = api.delete('sessions', session_id, 'jobs', job_id)
    assert resp.status_code in (204, 404), resp.text
    if resp.status_code == 404:
        assert_error(resp, 404)
    # the job stays in the session it belongs to
    assert api.doc('jobs', job_id)['session_id'] == other
    assert list(api.doc('sessions', other)['jobs']) == [job_id]
    assert helpers.snapshot(api)['jobs'] == before['jobs']


def test_remove_unknown_job_or_session(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    before = helpers.snapshot(api)
    assert_error(api.delete('sessions', session_id, 'jobs', 'f' * 32), 404)
    assert_error(api.delete('sessions', 'f' * 32, 'jobs', job_id), 404)
    assert helpers.snapshot(api) == before


def test_delete_session_detaches_jobs(api, client_id):
    session_id = helpers.make_session(api)
    jobs = [helpers.make_job(api, client_id) for _ in range(2)]
    for job_id in jobs:
        assert api.put('sessions', session_id, 'jobs',
                       job_id).status_code == 204
    schedules = {j: api.doc('jobs', j)['job_schedule'] for j in jobs}
    assert api.delete('sessions', session_id).status_code == 204
    for job_id in jobs:
        job = api.doc('jobs', job_id)
        assert job['session_id'] == ''
        assert job['session_tag'] == 0
        assert job['job_schedule'] == {**schedules[job_id],
                                       'event': 'stop'}


def test_delete_job_removes_it_from_session(api, client_id):
    session_id = helpers.make_session(api)
    kept = helpers.make_job(api, client_id)
    gone = helpers.make_job(api, client_id)
    for job_id in (kept, gone):
        assert api.put('sessions', session_id, 'jobs',
                       job_id).status_code == 204
    assert api.delete('jobs', gone).status_code == 204
    assert list(api.doc('sessions', session_id)['jobs']) == [kept]


def test_jobs_is_always_an_object(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    assert api.delete('sessions', session_id, 'jobs',
                      job_id).status_code == 204
    assert api.doc('sessions', session_id)['jobs'] == {}
    for session in api.list('sessions'):
        assert isinstance(session['jobs'], dict)
    for value in (None, [], [job_id]):
        resp = api.patch('sessions', session_id, json={'jobs': value})
        assert resp.status_code in (200, 400), resp.text
        assert api.doc('sessions', session_id)['jobs'] == {}


# action parsing --------------------------------------------------------

@pytest.fixture
def member(api, client_id):
    session_id = helpers.make_session(api)
    job_id = helpers.make_job(api, client_id)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    return session_id, job_id


@pytest.mark.parametrize('name', ['stop', 'bogus', 'START', 'restart'])
def test_unknown_action_is_405(api, member, name):
    session_id, job_id = member
    before = api.doc('sessions', session_id)
    resp = api.post('sessions', session_id, 'action',
                    json={name: {'job_id': job_id, 'current_tag': 0}})
    assert_error(resp, 405)
    assert resp.headers.get('allow')
    assert api.doc('sessions', session_id) == before


@pytest.mark.parametrize('body', [
    {}, [], 'start', 5, None, ['start'],
    {'start': None}, {'start': 'x'}, {'start': []}, {'start': {}},
    {'start': {'current_tag': 0}},
    {'start': {'job_id': None, 'current_tag': 0}},
    {'start': {'job_id': 5, 'current_tag': 0}},
    {'start': {'job_id': 'JOB'}},
    {'start': {'job_id': 'JOB', 'current_tag': 'abc'}},
    {'start': {'job_id': 'JOB', 'current_tag': '1.5'}},
    {'start': {'job_id': 'JOB', 'current_tag': 1.5}},
    {'start': {'job_id': 'JOB', 'current_tag': True}},
    {'start': {'job_id': 'JOB', 'current_tag': None}},
    {'start': {'job_id': 'JOB', 'current_tag': []}},
    {'start': {'job_id': 'JOB', 'current_tag': {}}},
    {'start': {'job_id': 'JOB', 'current_tag': -1}},
    {'start': {'job_id': 'JOB', 'current_tag': 1}},
    {'start': {'job_id': 'JOB', 'current_tag': 10 ** 30}},
    {'start': {'job_id': 'JOB', 'current_tag': '99999999999999999999999'}},
    {'start': {'job_id': 'not-a-member', 'current_tag': 0}},
    {'end': {'job_id': 'JOB', 'current_tag': 0}},
    {'end': {'job_id': 'JOB', 'current_tag': 0, 'result': 'great'}},
    {'end': {'job_id': 'JOB', 'current_tag': 0, 'result': None}},
    {'end': {'job_id': 'JOB', 'current_tag': 0, 'result': ''}},
    {'end': {'job_id': 'JOB', 'current_tag': 0, 'result': 'SUCCESS'}},
    {'end': {'job_id': 'JOB', 'current_tag': 'x', 'result': 'success'}},
    {'end': {'job_id': 'JOB', 'result': 'success'}},
    {'end': {'current_tag': 0, 'result': 'success'}},
    {'end': {'job_id': 'not-a-member', 'current_tag': 0,
             'result': 'success'}},
])
def test_bad_action_requests_are_400(api, member, body):
    session_id, job_id = member
    body = _substitute(body, job_id)
    before = helpers.snapshot(api)
    assert_error(api.post('sessions', session_id, 'action', json=body), 400)
    assert helpers.snapshot(api) == before


def _substitute(value, job_id):
    if value == 'JOB':
        return job_id
    if isinstance(value, dict):
        return {k: _substitute(v, job_id) for k, v in value.items()}
    return value


def test_action_on_unknown_session(api, member):
    _, job_id = member
    assert_error(api.post('sessions', 'f' * 32, 'action', json={
        'start': {'job_id': job_id, 'current_tag': 0}}), 404)


def test_action_with_string_tag_and_trailing_slash(api, member):
    session_id, job_id = member
    resp = api.post('sessions', session_id, 'action', slash=True,
                    json={'start': {'job_id': job_id, 'current_tag': '0'}})
    assert resp.status_code == 202, resp.text
    assert resp.json == {'result': 'success', 'session_tag': 1}


def test_job_of_deleted_session_is_not_a_member(api, member, client_id):
    session_id, job_id = member
    assert api.delete('sessions', session_id).status_code == 204
    resp = api.post('sessions', session_id, 'action', json={
        'start': {'job_id': job_id, 'current_tag': 0}})
    assert_error(resp, 404)


# -- regressions found while documenting the API (OpenAPI review); moved
# as they were from tests/api/test_review_fixes.py -------------------------


def test_an_unknown_session_action_allows_post_only(client):
    api = helpers.Api(client, 'v2')
    resp = api.post('sessions', json={'schedule': {}})
    assert resp.status_code == 201
    resp = api.post('sessions', resp.json['session_id'], 'action',
                    json={'stop': {'job_id': 'x', 'current_tag': 0}})
    assert_error(resp, 405)
    assert resp.headers['Allow'] == 'POST'


def test_whole_numbers_are_integers_however_they_are_written(client):
    api = helpers.Api(client, 'v2')
    resp = api.post('sessions', json={'schedule': {}, 'session_tag': 2.0,
                                      'hold_off': 3e1})
    assert resp.status_code == 201, resp.text
    session = api.doc('sessions', resp.json['session_id'])
    assert session['session_tag'] == 2 and isinstance(
        session['session_tag'], int)
    assert session['hold_off'] == 30 and isinstance(session['hold_off'],
                                                    int)
    # a real fraction is still refused where an integer is required
    assert_error(api.post('sessions', json={'schedule': {},
                                            'session_tag': 2.5}), 400)
