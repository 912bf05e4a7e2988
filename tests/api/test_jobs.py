"""/jobs in both versions (spec §1.3 #9-15, §2.3, §3.3, D6, D7, D11, D14)."""

import copy

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error

NOW = 1_700_000_000


@pytest.fixture
def client_id(api):
    return helpers.register_client(api, 'node1')


@pytest.mark.parametrize('slash', [False, True])
def test_create_get_list_delete(api, client_id, slash):
    body = helpers.job_body(client_id)
    resp = api.post('jobs', json=body, slash=slash)
    assert resp.status_code == 201, resp.text
    assert list(resp.json) == ['job_id']
    job_id = resp.json['job_id']
    assert helpers.HEX_ID.match(job_id)

    resp = api.get('jobs', job_id)
    assert resp.status_code == 200
    doc = resp.json
    assert doc['job_id'] == job_id
    assert doc['client_id'] == client_id
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert doc['description'] == body['description']
    assert doc['session_id'] == ''
    assert doc['session_tag'] == 0
    assert doc['job_schedule'] == {**body['job_schedule'],
                                   'time_created': NOW,
                                   'time_started': -1, 'time_ended': -1}
    assert len(doc['job_actions']) == 1
    entry = doc['job_actions'][0]
    for key, value in body['job_actions'][0].items():
        assert entry[key] == value
    assert entry['action_id']
    assert entry['user_id'] == 'alice'
    assert entry['project_id'] == helpers.PROJECT_A
    assert isinstance(doc['_version'], int)
    assert resp.headers['etag'] == f'"{doc["_version"]}"'

    resp = api.get('jobs', slash=slash)
    assert resp.status_code == 200
    assert resp.json == {'jobs': [helpers.strip_version(doc)]}

    resp = api.delete('jobs', job_id, slash=slash)
    assert resp.status_code == 204
    assert_error(api.get('jobs', job_id), 404)
    assert_error(api.delete('jobs', job_id), 404)
    assert api.list('jobs') == []


def test_create_ignores_ids_and_server_fields(api, client_id, clock):
    body = helpers.job_body(
        client_id, job_id='chosen-id', user_id='mallory',
        project_id='elsewhere', session_id='some-session', session_tag=4,
        job_schedule={'time_created': 5, 'time_started': 6,
                      'time_ended': 7, 'status': 'scheduled'})
    job_id = helpers.create(api, 'jobs', body)
    assert job_id != 'chosen-id'
    doc = api.doc('jobs', job_id)
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert doc['session_id'] == ''
    assert doc['job_schedule'] == {'time_created': NOW, 'time_started': -1,
                                   'time_ended': -1, 'status': 'scheduled'}
    assert_error(api.get('jobs', 'chosen-id'), 404)


def test_create_without_job_schedule(api, client_id):
    body = helpers.job_body(client_id)
    del body['job_schedule']
    job_id = helpers.create(api, 'jobs', body)
    assert api.doc('jobs', job_id)['job_schedule'] == {
        'time_created': NOW, 'time_started': -1, 'time_ended': -1}


def test_create_needs_registered_client(api):
    body = helpers.job_body('proj-a_unknown')
    assert_error(api.post('jobs', json=body), 422)
    assert api.list('jobs') == []
    assert api.list('actions') == []


def test_create_needs_client_of_the_same_project(api):
    other = api.as_(user='carol', project=helpers.PROJECT_B)
    helpers.register_client(other, 'node9', client_id='node9')
    assert_error(api.post('jobs', json=helpers.job_body('node9')), 422)
    assert api.list('jobs') == []


@pytest.mark.parametrize('field,value,capability', [
    ('action', 'restore', 'supported_actions'),
    ('mode', 'mysql', 'supported_modes'),
    ('storage', 'ssh', 'supported_storages'),
    ('engine', 'rsync', 'supported_engines'),
])
def test_create_checks_client_capabilities(api, field, value, capability):
    client_id = helpers.register_client(
        api, 'node2', supported_actions=['backup'], supported_modes=['fs'],
        supported_storages=['swift'], supported_engines=['tar'])
    ok = helpers.job_body(client_id, actions=[
        {'freezer_action': helpers.freezer_action(engine='tar')}])
    helpers.create(api, 'jobs', ok)
    count = len(api.list('actions'))
    bad = helpers.job_body(client_id, actions=[
        {'freezer_action': helpers.freezer_action(engine='tar')},
        {'freezer_action': helpers.freezer_action(
            **{'engine': 'tar', field: value})}])
    assert_error(api.post('jobs', json=bad), 422)
    assert len(api.list('jobs')) == 1
    assert len(api.list('actions')) == count
    # replace and patch are checked too
    job_id = api.ids('jobs')[0]
    before = api.doc('jobs', job_id)
    assert_error(api.post('jobs', job_id, json=bad), 422)
    assert_error(api.patch('jobs', job_id,
                           json={'job_actions': bad['job_actions']}), 422)
    assert api.doc('jobs', job_id) == before


def test_client_without_capability_lists_has_the_full_lists(api):
    client_id = helpers.register_client(api, 'node3')
    body = helpers.job_body(client_id, actions=[{'freezer_action': {
        'action': 'exec', 'mode': 'nova', 'storage': 'ftp',
        'engine': 'osbrick'}}])
    helpers.create(api, 'jobs', body)
    # the lists it shows are the ones its jobs are checked against
    body = helpers.job_body(client_id, actions=[{'freezer_action': {
        'action': 'backup', 'mode': 'tape'}}])
    resp = api.post('jobs', json=body)
    assert_error(resp, 422)
    assert resp.json['description'] == 'Client does not support mode: tape'


# replace ----------------------------------------------------------------

@pytest.mark.parametrize('slash', [False, True])
def test_replace(api, client_id, slash):
    job_id = helpers.make_job(api, client_id)
    before = api.doc('jobs', job_id)
    new = helpers.job_body(
        client_id, description='replaced',
        job_schedule={'schedule_date': '2030-01-01T00:00:00'},
        actions=[{'freezer_action': helpers.freezer_action(mode='mysql')}])
    resp = api.post('jobs', job_id, json=new)
    assert resp.status_code == 201, resp.text
    assert resp.json == {'job_id': job_id,
                         'version': before['_version'] + 1}
    doc = api.doc('jobs', job_id)
    assert doc['_version'] == before['_version'] + 1
    assert doc['description'] == 'replaced'
    assert doc['job_schedule']['schedule_date'] == '2030-01-01T00:00:00'
    assert 'schedule_interval' not in doc['job_schedule']
    assert [a['freezer_action'] for a in doc['job_actions']] == [
        helpers.freezer_action(mode='mysql')]
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert len(api.list('jobs')) == 1


def test_replace_unknown_id_creates(api, client_id):
    resp = api.post('jobs', 'my-own-job-id',
                    json=helpers.job_body(client_id))
    assert resp.status_code == 201, resp.text
    assert resp.json['job_id'] == 'my-own-job-id'
    assert isinstance(resp.json['version'], int)
    doc = api.doc('jobs', 'my-own-job-id')
    assert doc['job_id'] == 'my-own-job-id'
    assert doc['job_schedule']['time_created'] == NOW
    assert api.ids('jobs') == ['my-own-job-id']


def test_replace_unknown_id_keeps_the_client_run_times(api, client_id):
    # only create forces them (spec §2.3); see jobs.start_schedule
    body = helpers.job_body(client_id, job_schedule={'time_created': 5})
    assert api.post('jobs', 'my-own-job-id', json=body).status_code == 201
    assert api.doc('jobs', 'my-own-job-id')['job_schedule'] == {
        'time_created': 5, 'time_started': -1, 'time_ended': -1}


def test_replace_url_id_wins_over_body_id(api, client_id):
    job_id = helpers.make_job(api, client_id)
    resp = api.post('jobs', job_id,
                    json=helpers.job_body(client_id, job_id='other-id'))
    assert resp.status_code == 201
    assert resp.json['job_id'] == job_id
    assert api.ids('jobs') == [job_id]


def test_replace_with_get_document_does_not_duplicate_actions(api,
                                                              client_id):
    """What python-freezerclient does: GET, edit, POST to the item URL."""
    job_id = helpers.make_job(api, client_id)
    actions_before = api.list('actions')
    assert len(actions_before) == 1
    doc = api.doc('jobs', job_id)
    doc['description'] = 'edited'
    resp = api.post('jobs', job_id, json=doc)
    assert resp.status_code == 201, resp.text
    assert api.doc('jobs', job_id)['description'] == 'edited'
    assert api.list('actions') == actions_before
    # and again through PATCH with the whole document (Pike scheduler)
    doc = api.doc('jobs', job_id)
    doc['job_schedule']['status'] = 'scheduled'
    resp = api.patch('jobs', job_id, json=doc)
    assert resp.status_code == 200, resp.text
    assert api.list('actions') == actions_before


@pytest.mark.parametrize('bad', [
    {'client_id': None},
    {'job_actions': 'x'},
    {'job_schedule': {'bogus_key': 1}},
    {'unknown_top_level': 1},
])
def test_replace_invalid_changes_nothing(api, client_id, bad):
    job_id = helpers.make_job(api, client_id)
    before = helpers.snapshot(api)
    body = helpers.job_body(client_id)
    body.update(bad)
    body = {k: v for k, v in body.items() if v is not None}
    assert_error(api.post('jobs', job_id, json=body), 400)
    assert helpers.snapshot(api) == before


def test_replace_if_match(api, client_id):
    job_id = helpers.make_job(api, client_id)
    version = api.doc('jobs', job_id)['_version']
    body = helpers.job_body(client_id, description='v2')
    assert_error(api.post('jobs', job_id, json=body,
                          headers={'If-Match': str(version + 5)}), 412)
    assert api.doc('jobs', job_id)['description'] != 'v2'
    resp = api.post('jobs', job_id, json=body,
                    headers={'If-Match': str(version)})
    assert resp.status_code == 201
    assert resp.json['version'] == version + 1


def test_replace_keeps_session_membership(api, client_id):
    job_id = helpers.make_job(api, client_id)
    session_id = helpers.make_session(api)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    resp = api.post('jobs', job_id, json=helpers.job_body(
        client_id, session_id=''))
    assert resp.status_code == 201
    assert api.doc('jobs', job_id)['session_id'] == session_id


def test_replace_after_delete_reuses_id(api, client_id):
    job_id = helpers.make_job(api, client_id)
    assert api.delete('jobs', job_id).status_code == 204
    resp = api.post('jobs', job_id,
                    json=helpers.job_body(client_id, description='back'))
    assert resp.status_code == 201, resp.text
    assert api.doc('jobs', job_id)['description'] == 'back'


# PATCH ------------------------------------------------------------------

def test_patch_deep_merges(api, client_id):
    job_id = helpers.make_job(api, client_id)
    before = api.doc('jobs', job_id)
    resp = api.patch('jobs', job_id, json={
        'job_schedule': {'status': 'scheduled', 'event': '',
                         'current_pid': 4242},
        'description': 'patched'})
    assert resp.status_code == 200, resp.text
    assert resp.json == {'job_id': job_id,
                         'version': before['_version'] + 1}
    after = api.doc('jobs', job_id)
    expected = copy.deepcopy(before)
    expected['job_schedule'].update(status='scheduled', event='',
                                    current_pid=4242)
    expected['description'] = 'patched'
    expected['_version'] = before['_version'] + 1
    assert after == expected


def test_patch_without_schedule_keeps_schedule(api, client_id):
    job_id = helpers.make_job(api, client_id)
    before = api.doc('jobs', job_id)
    resp = api.patch('jobs', job_id, json={'description': 'only this'})
    assert resp.status_code == 200
    after = api.doc('jobs', job_id)
    assert after['job_schedule'] == before['job_schedule']
    assert after['job_actions'] == before['job_actions']


def test_patch_replaces_arrays(api, client_id):
    job_id = helpers.make_job(api, client_id, actions=[
        {'freezer_action': helpers.freezer_action()},
        {'freezer_action': helpers.freezer_action(action='restore')}])
    new_actions = [{'freezer_action': helpers.freezer_action(mode='mysql'),
                    'max_retries': 1}]
    resp = api.patch('jobs', job_id, json={'job_actions': new_actions})
    assert resp.status_code == 200
    doc = api.doc('jobs', job_id)
    assert len(doc['job_actions']) == 1
    assert doc['job_actions'][0]['freezer_action'] == \
        helpers.freezer_action(mode='mysql')
    assert doc['job_actions'][0]['max_retries'] == 1


def test_patch_scheduler_form(api, client_id):
    """Later schedulers PATCH {job_schedule, session_id, session_tag}."""
    job_id = helpers.make_job(api, client_id)
    resp = api.patch('jobs', job_id, json={
        'job_schedule': {'status': 'running', 'result': '',
                         'time_started': NOW + 5, 'time_ended': -1},
        'session_id': '', 'session_tag': 3})
    assert resp.status_code == 200, resp.text
    doc = api.doc('jobs', job_id)
    assert doc['job_schedule']['status'] == 'running'
    assert doc['job_schedule']['time_started'] == NOW + 5
    assert doc['job_schedule']['schedule_interval'] == '1 days'
    assert doc['session_tag'] == 3


def test_patch_ignores_server_fields(api, client_id):
    job_id = helpers.make_job(api, client_id)
    session_id = helpers.make_session(api)
    before = api.doc('jobs', job_id)
    resp = api.patch('jobs', job_id, json={
        'job_id': 'other', 'user_id': 'mallory', 'project_id': 'elsewhere',
        'user_name': 'mallory', '_version': 99, 'session_id': session_id,
        'description': 'ok'})
    assert resp.status_code == 200, resp.text
    after = api.doc('jobs', job_id)
    assert after['job_id'] == job_id
    assert after['user_id'] == 'alice'
    assert after['project_id'] == helpers.PROJECT_A
    assert after['session_id'] == before['session_id'] == ''
    assert after['description'] == 'ok'
    assert 'user_name' not in after
    assert_error(api.get('jobs', 'other'), 404)


def test_patch_to_unregistered_client(api, client_id):
    job_id = helpers.make_job(api, client_id)
    before = api.doc('jobs', job_id)
    assert_error(api.patch('jobs', job_id,
                           json={'client_id': 'proj-a_ghost'}), 422)
    assert api.doc('jobs', job_id) == before


@pytest.mark.parametrize('patch', [
    {'job_schedule': {'status': 'bogus'}},
    {'job_schedule': {'event': 'explode'}},
    {'job_schedule': {'result': 'maybe'}},
    {'job_schedule': {'time_created': 'now'}},
    {'job_schedule': {'current_pid': 'pid'}},
    {'job_schedule': {'schedule_interval': 'every day'}},
    {'job_schedule': {'schedule_date': 'tomorrow'}},
    {'job_schedule': {'schedule_year': '20'}},
    {'job_schedule': {'schedule_time': '10:00'}},
    {'job_schedule': 'daily'},
    {'job_schedule': None},
    {'job_actions': {'freezer_action': {}}},
    {'job_actions': ['backup']},
    {'job_actions': [{'max_retries': 1}]},
    {'job_actions': [{'freezer_action': 'backup'}]},
    {'job_actions': [{'freezer_action': {'action': 'bad action!'}}]},
    {'job_actions': [{'freezer_action': {'mode': 5}}]},
    {'job_actions': [{'freezer_action': {}, 'max_retries': 'x'}]},
    {'job_actions': [{'freezer_action': {}, 'max_retries_interval': 1.5}]},
    {'job_actions': [{'freezer_action': {}, 'mandatory': 'yes'}]},
    {'client_id': 5},
    {'client_id': 'bad client!'},
    {'client_id': None},
    {'description': 5},
    {'session_tag': 'one'},
    {'session_tag': -1},
    {'session_tag': True},
    {'unknown_field': 1},
    {'action_defaults': 'x'},
    {'action_defaults': ['x']},
    [], 'x', 3, None,
])
def test_patch_invalid_changes_nothing(api, client_id, patch):
    job_id = helpers.make_job(api, client_id)
    before = helpers.snapshot(api)
    assert_error(api.patch('jobs', job_id, json=patch), 400)
    assert helpers.snapshot(api) == before


def test_patch_unknown_job(api, client_id):
    assert_error(api.patch('jobs', 'f' * 32,
                           json={'description': 'x'}), 404)
    assert api.list('jobs') == []


def test_patch_if_match(api, client_id):
    job_id = helpers.make_job(api, client_id)
    version = api.doc('jobs', job_id)['_version']
    assert_error(api.patch('jobs', job_id, json={'description': 'x'},
                           headers={'If-Match': str(version + 1)}), 412)
    assert api.doc('jobs', job_id)['_version'] == version
    resp = api.patch('jobs', job_id, json={'description': 'x'},
                     headers={'If-Match': str(version)})
    assert resp.status_code == 200
    assert resp.json['version'] == version + 1
    resp = api.patch('jobs', job_id, json={'description': 'y'},
                     headers={'If-Match': str(version)})
    assert_error(resp, 412)
    assert api.doc('jobs', job_id)['description'] == 'x'


@pytest.mark.parametrize('value', ['abc', '1.0', '-1', 'W/"x"'])
def test_if_match_not_a_version(api, client_id, value):
    job_id = helpers.make_job(api, client_id)
    before = api.doc('jobs', job_id)
    resp = api.patch('jobs', job_id, json={'description': 'x'},
                     headers={'If-Match': value})
    assert resp.status_code in (400, 412), resp.text
    helpers.assert_client_error(resp)
    assert api.doc('jobs', job_id) == before


def test_versions_increase_on_every_write(api, client_id):
    job_id = helpers.make_job(api, client_id)
    versions = [api.doc('jobs', job_id)['_version']]
    resp = api.patch('jobs', job_id, json={'description': 'a'})
    versions.append(resp.json['version'])
    assert api.post('jobs', job_id, 'event',
                    json={'stop': None}).status_code == 202
    versions.append(api.doc('jobs', job_id)['_version'])
    resp = api.post('jobs', job_id, json=helpers.job_body(client_id))
    versions.append(resp.json['version'])
    assert versions == list(range(versions[0], versions[0] + 4))
    assert api.doc('jobs', job_id)['_version'] == versions[-1]


# action_defaults (D11) ----------------------------------------------------

DEFAULTS = {'storage': 'local', 'container': '/backups/default',
            'log_file': '/var/log/freezer.log', 'mode': 'fs'}


def _defaults_body(client_id):
    return helpers.job_body(
        client_id,
        actions=[{'freezer_action': {'action': 'backup', 'mode': 'mysql',
                                     'container': None}},
                 {'freezer_action': {'action': 'restore',
                                     'storage': 'swift'}}],
        action_defaults=DEFAULTS)


def _check_expanded(doc):
    assert 'action_defaults' not in doc
    first, second = [a['freezer_action'] for a in doc['job_actions']]
    assert first == {'action': 'backup', 'mode': 'mysql',
                     'container': '/backups/default', 'storage': 'local',
                     'log_file': '/var/log/freezer.log'}
    assert second == {'action': 'restore', 'storage': 'swift',
                      'container': '/backups/default', 'mode': 'fs',
                      'log_file': '/var/log/freezer.log'}


def test_action_defaults_on_create(api, client_id):
    job_id = helpers.create(api, 'jobs', _defaults_body(client_id))
    _check_expanded(api.doc('jobs', job_id))
    stored = sorted((a['freezer_action'] for a in api.list('actions')),
                    key=lambda a: a['action'])
    assert stored[0]['container'] == '/backups/default'
    assert stored[1]['mode'] == 'fs'
    for action in api.list('actions'):
        assert 'action_defaults' not in action


def test_action_defaults_on_replace(api, client_id):
    job_id = helpers.make_job(api, client_id)
    resp = api.post('jobs', job_id, json=_defaults_body(client_id))
    assert resp.status_code == 201, resp.text
    _check_expanded(api.doc('jobs', job_id))


def test_action_defaults_on_patch(api, client_id):
    job_id = helpers.make_job(api, client_id)
    body = _defaults_body(client_id)
    resp = api.patch('jobs', job_id, json={
        'job_actions': body['job_actions'],
        'action_defaults': body['action_defaults']})
    assert resp.status_code == 200, resp.text
    _check_expanded(api.doc('jobs', job_id))


def test_action_defaults_alone_in_patch_changes_nothing(api, client_id):
    job_id = helpers.make_job(api, client_id)
    before = api.doc('jobs', job_id)
    resp = api.patch('jobs', job_id, json={'action_defaults': DEFAULTS})
    assert resp.status_code == 200, resp.text
    after = api.doc('jobs', job_id)
    assert 'action_defaults' not in after
    assert after['job_actions'] == before['job_actions']


def test_action_defaults_null_is_ignored(api, client_id):
    job_id = helpers.create(api, 'jobs', helpers.job_body(
        client_id, action_defaults=None))
    assert 'action_defaults' not in api.doc('jobs', job_id)


def test_action_defaults_invalid_on_create(api, client_id):
    for value in ('x', ['storage'], 5, True):
        body = _defaults_body(client_id)
        body['action_defaults'] = value
        assert_error(api.post('jobs', json=body), 400)
    assert api.list('jobs') == []
    assert api.list('actions') == []


# job actions under /actions (D11) ----------------------------------------

def test_job_actions_are_kept_as_actions(api, client_id):
    actions = [{'freezer_action': helpers.freezer_action(),
                'max_retries': 3, 'mandatory': True},
               {'freezer_action': helpers.freezer_action(action='restore'),
                'max_retries_interval': 7}]
    job_id = helpers.make_job(api, client_id, actions=actions)
    job = api.doc('jobs', job_id)
    stored = {a['action_id']: a for a in api.list('actions')}
    assert len(stored) == 2
    for entry, given in zip(job['job_actions'], actions):
        action = stored[entry['action_id']]
        for key, value in given.items():
            assert action[key] == value
        assert action['user_id'] == 'alice'
        assert action['project_id'] == helpers.PROJECT_A
        assert api.doc('actions', entry['action_id'])['freezer_action'] == \
            given['freezer_action']


def test_job_action_with_own_action_id_reuses_it(api, client_id):
    action_id = helpers.make_action(api)
    action = api.doc('actions', action_id)
    body = helpers.job_body(client_id, actions=[helpers.strip_version(
        action)])
    job_id = helpers.create(api, 'jobs', body)
    assert api.doc('jobs', job_id)['job_actions'][0]['action_id'] == \
        action_id
    assert api.ids('actions') == [action_id]
    assert api.doc('actions', action_id) == action


def test_job_action_naming_a_different_own_action_does_not_change_it(
        api, client_id):
    action_id = helpers.make_action(api)
    action = api.doc('actions', action_id)
    entry = {'action_id': action_id,
             'freezer_action': helpers.freezer_action(mode='mongo')}
    job_id = helpers.create(api, 'jobs',
                            helpers.job_body(client_id, actions=[entry]))
    assert api.doc('actions', action_id) == action
    job_entry = api.doc('jobs', job_id)['job_actions'][0]
    assert job_entry['freezer_action']['mode'] == 'mongo'
    if job_entry['action_id'] != action_id:
        assert api.doc('actions', job_entry['action_id'])[
            'freezer_action']['mode'] == 'mongo'


def test_job_action_naming_foreign_action_never_overwrites_it(api):
    other = api.as_(user='carol', project=helpers.PROJECT_B)
    foreign_id = helpers.make_action(other)
    foreign = other.doc('actions', foreign_id)
    client_id = helpers.register_client(api, 'node1')
    entry = {'action_id': foreign_id,
             'freezer_action': helpers.freezer_action(mode='mysql',
                                                      backup_name='evil')}
    resp = api.post('jobs', json=helpers.job_body(client_id,
                                                  actions=[entry]))
    assert resp.status_code in (201, 409), resp.text
    assert other.doc('actions', foreign_id) == foreign
    assert_error(api.get('actions', foreign_id), 404)
    if resp.status_code == 201:
        job = api.doc('jobs', resp.json['job_id'])
        own_id = job['job_actions'][0]['action_id']
        assert own_id != foreign_id
        assert api.doc('actions', own_id)['freezer_action'][
            'backup_name'] == 'evil'


def test_job_action_naming_other_users_action_in_v1(v1):
    bob = v1.as_(user='bob')
    bobs_id = helpers.make_action(bob)
    bobs = bob.doc('actions', bobs_id)
    client_id = helpers.register_client(v1, 'node1')
    entry = {'action_id': bobs_id,
             'freezer_action': helpers.freezer_action(backup_name='evil')}
    resp = v1.post('jobs', json=helpers.job_body(client_id,
                                                 actions=[entry]))
    assert resp.status_code in (201, 409), resp.text
    assert bob.doc('actions', bobs_id) == bobs


def test_failed_job_leaves_no_actions(api, client_id):
    body = helpers.job_body(client_id, job_schedule={'status': 'bogus'})
    assert_error(api.post('jobs', json=body), 400)
    body = helpers.job_body(client_id, unknown=1)
    assert_error(api.post('jobs', json=body), 400)
    assert api.list('actions') == []
    assert api.list('jobs') == []


# job actions given by action_id alone (D11) -------------------------------

def test_job_actions_by_reference_on_create(api, client_id):
    # python-freezerclient jobs.create with one inline and one referenced
    # action: the job stores the action's freezer_action and retry fields,
    # in the order given, with the referenced id
    action_id = helpers.make_action(api, max_retries=4,
                                    max_retries_interval=9, mandatory=True)
    action = api.doc('actions', action_id)
    inline = {'freezer_action': helpers.freezer_action(mode='mysql'),
              'max_retries': 2}
    body = helpers.job_body(client_id, actions=[
        inline, {'action_id': action_id}])
    job_id = helpers.create(api, 'jobs', body)
    first, second = api.doc('jobs', job_id)['job_actions']
    assert first['freezer_action'] == inline['freezer_action']
    assert first['max_retries'] == 2 and first['action_id'] != action_id
    assert second == {'action_id': action_id,
                      'freezer_action': action['freezer_action'],
                      'max_retries': 4, 'max_retries_interval': 9,
                      'mandatory': True, 'user_id': 'alice',
                      'project_id': helpers.PROJECT_A}
    # the referenced action is used, not copied nor changed
    assert api.doc('actions', action_id) == action
    assert sorted(api.ids('actions')) == sorted([action_id,
                                                 first['action_id']])
    # lists show the same
    listed = [job for job in api.list('jobs') if job['job_id'] == job_id]
    assert listed[0]['job_actions'][1] == second


def test_job_action_by_reference_keeps_its_own_retry_fields(api, client_id):
    action_id = helpers.make_action(api, max_retries=4,
                                    max_retries_interval=9, mandatory=True)
    entry = {'action_id': action_id, 'max_retries': 0,
             'max_retries_interval': 1, 'mandatory': False}
    job_id = helpers.make_job(api, client_id, actions=[entry, entry])
    for stored in api.doc('jobs', job_id)['job_actions']:
        assert stored['action_id'] == action_id
        assert (stored['max_retries'], stored['max_retries_interval'],
                stored['mandatory']) == (0, 1, False)
    assert api.ids('actions') == [action_id]
    assert api.doc('actions', action_id)['max_retries'] == 4


def test_job_action_by_reference_on_replace_and_patch(api, client_id):
    job_id = helpers.make_job(api, client_id)
    backup = helpers.make_action(api)
    restore = helpers.make_action(api, freezer_action=helpers.freezer_action(
        action='restore', restore_abs_path='/srv'))
    resp = api.post('jobs', job_id, json=helpers.job_body(
        client_id, actions=[{'action_id': restore}, {'action_id': backup}]))
    assert resp.status_code == 201, resp.text
    actions = api.doc('jobs', job_id)['job_actions']
    assert [a['action_id'] for a in actions] == [restore, backup]
    assert actions[0]['freezer_action']['restore_abs_path'] == '/srv'
    resp = api.patch('jobs', job_id, json={'job_actions': [
        {'action_id': backup, 'mandatory': True}]})
    assert resp.status_code == 200, resp.text
    (patched,) = api.doc('jobs', job_id)['job_actions']
    assert patched['action_id'] == backup and patched['mandatory'] is True
    assert patched['freezer_action'] == api.doc('actions', backup)[
        'freezer_action']


def test_job_action_by_reference_takes_the_current_action(api, client_id):
    action_id = helpers.make_action(api)
    resp = api.patch('actions', action_id,
                     json={'freezer_action': {'backup_name': 'renamed'}})
    assert resp.status_code == 200
    job_id = helpers.make_job(api, client_id,
                              actions=[{'action_id': action_id}])
    stored = api.doc('jobs', job_id)['job_actions'][0]
    assert stored['freezer_action']['backup_name'] == 'renamed'


def test_job_action_by_reference_is_checked_against_the_client(api):
    client_id = helpers.register_client(api, 'node2',
                                        supported_modes=['fs'])
    action_id = helpers.make_action(
        api, freezer_action=helpers.freezer_action(mode='mysql'))
    resp = api.post('jobs', json=helpers.job_body(
        client_id, actions=[{'action_id': action_id}]))
    assert_error(resp, 422)
    assert resp.json['description'] == 'Client does not support mode: mysql'
    assert api.list('jobs') == []


def test_job_action_by_reference_to_a_project_mates_action(v1, v2):
    # v2 callers share their project's actions; v1 callers see only theirs
    bob = v2.as_(user='bob')
    action_id = helpers.make_action(bob)
    client_id = helpers.register_client(v1, 'node1')
    body = helpers.job_body(client_id, actions=[{'action_id': action_id}])
    helpers.create(v2, 'jobs', body)
    resp = v1.post('jobs', json=body)
    assert_error(resp, 422)
    assert resp.json['description'] == (
        f'job_actions/0: no action found with ID {action_id}')


@pytest.mark.parametrize('where', ['nowhere', 'other project'])
def test_job_action_by_unknown_reference_reveals_nothing(api, client_id,
                                                         where):
    if where == 'nowhere':
        action_id = 'no-such-action'
    else:
        other = api.as_(user='carol', project=helpers.PROJECT_B)
        action_id = helpers.make_action(other, action_id='hidden-action')
    job_id = helpers.make_job(api, client_id)
    before = helpers.snapshot(api)
    body = helpers.job_body(client_id, actions=[
        {'freezer_action': helpers.freezer_action()},
        {'action_id': action_id, 'max_retries': 1}])
    answers = [api.post('jobs', json=body), api.post('jobs', job_id,
                                                     json=body),
               api.patch('jobs', job_id,
                         json={'job_actions': body['job_actions']})]
    for resp in answers:
        assert_error(resp, 422)
        # the same words whether the id exists elsewhere or not at all
        assert resp.json['description'] == (
            f'job_actions/1: no action found with ID {action_id}')
    assert helpers.snapshot(api) == before


@pytest.mark.parametrize('entry', [
    {}, {'max_retries': 1}, {'mandatory': True},
    {'action_id': ''}, {'action_id': None}, {'action_id': 'a b'},
    {'action_id': 'x', 'max_retries': -1},
])
def test_job_action_without_action_or_id_is_400(api, client_id, entry):
    resp = api.post('jobs', json=helpers.job_body(client_id,
                                                  actions=[entry]))
    assert_error(resp, 400)
    assert resp.json['description'].startswith('job_actions/0')
    assert api.list('jobs') == []


# events ------------------------------------------------------------------

@pytest.mark.parametrize('event', ['start', 'stop', 'abort'])
def test_event(api, client_id, event):
    job_id = helpers.make_job(api, client_id, job_schedule={
        'status': 'completed', 'result': 'fail', 'event': '',
        'schedule_interval': '1 days'})
    before = api.doc('jobs', job_id)
    resp = api.post('jobs', job_id, 'event', json={event: None})
    assert resp.status_code == 202, resp.text
    assert resp.json == {'result': 'success'}
    after = api.doc('jobs', job_id)
    assert after['job_schedule']['event'] == event
    if event == 'start':
        assert after['job_schedule']['status'] == ''
        assert after['job_schedule']['result'] == ''
    else:
        assert after['job_schedule']['status'] == 'completed'
        assert after['job_schedule']['result'] == 'fail'
    assert after['job_schedule']['schedule_interval'] == '1 days'
    assert after['description'] == before['description']
    assert after['_version'] == before['_version'] + 1

    resp = api.post('jobs', job_id, 'event', json={event: None})
    assert resp.status_code == 202
    assert resp.json == {'result': f'{event} already requested'}
    assert api.doc('jobs', job_id) == after


def test_event_value_is_ignored_and_slash_works(api, client_id):
    job_id = helpers.make_job(api, client_id)
    resp = api.post('jobs', job_id, 'event', json={'stop': {'why': 'x'}},
                    slash=True)
    assert resp.status_code == 202
    assert resp.json == {'result': 'success'}


@pytest.mark.parametrize('body', [
    {'remove': None}, {'bogus': None}, {'START': None}, {}, [], ['start'],
    'start', 1, None,
])
def test_event_invalid(api, client_id, body):
    job_id = helpers.make_job(api, client_id)
    before = api.doc('jobs', job_id)
    assert_error(api.post('jobs', job_id, 'event', json=body), 400)
    assert api.doc('jobs', job_id) == before


def test_event_unknown_job(api):
    assert_error(api.post('jobs', 'f' * 32, 'event',
                          json={'start': None}), 404)


# create validation -------------------------------------------------------

@pytest.mark.parametrize('change', [
    {'client_id': helpers._MISSING},
    {'job_actions': helpers._MISSING},
    {'client_id': ''},
    {'client_id': 7},
    {'client_id': 'bad client id'},
    {'job_actions': 'backup'},
    {'job_actions': {}},
    {'job_actions': [None]},
    {'job_actions': [[]]},
    {'job_actions': [{}]},
    {'job_actions': [{'freezer_action': None}]},
    {'job_actions': [{'freezer_action': []}]},
    {'job_actions': [{'freezer_action': {'action': 'a b'}}]},
    {'job_actions': [{'freezer_action': {'path_to_backup': 5}}]},
    {'job_actions': [{'freezer_action': {'backup_name': ['x']}}]},
    {'job_actions': [{'freezer_action': {'container': {}}}]},
    {'job_actions': [{'freezer_action': {}, 'max_retries': '3'}]},
    {'job_actions': [{'freezer_action': {}, 'mandatory': 1}]},
    {'job_schedule': []},
    {'job_schedule': 'now'},
    {'job_schedule': {'schedule_interval': '5 fortnights'}},
    {'job_schedule': {'schedule_interval': 5}},
    {'job_schedule': {'schedule_start_date': '01/02/2024'}},
    {'job_schedule': {'schedule_end_date': 20240101}},
    {'job_schedule': {'schedule_month': 1}},
    {'job_schedule': {'schedule_day_of_week': ['mon']}},
    {'job_schedule': {'status': 'done'}},
    {'job_schedule': {'event': 'go'}},
    {'job_schedule': {'result': 'ok'}},
    {'job_schedule': {'current_pid': 'x'}},
    {'job_schedule': {'extra': 1}},
    {'description': ['x']},
    {'session_name': 5},
    {'session_tag': 'x'},
    {'something_else': True},
])
def test_create_invalid(api, client_id, change):
    body = helpers.job_body(client_id)
    for key, value in change.items():
        if value is helpers._MISSING:
            del body[key]
        else:
            body[key] = value
    assert_error(api.post('jobs', json=body), 400)
    assert api.list('jobs') == []
    assert api.list('actions') == []


@pytest.mark.parametrize('schedule', [
    {'schedule_interval': 'continuous'},
    {'schedule_interval': '2  hours'},
    {'schedule_interval': '1 weeks'},
    {'schedule_date': '2024-05-01T10:00:00Z'},
    {'schedule_date': '2024-05-01T10:00:00.123+02:00'},
    {'schedule_year': '2025', 'schedule_month': '1-6, 9-12',
     'schedule_day_of_week': 'mon, wed, fri', 'schedule_hour': '3',
     'schedule_minute': '*/5', 'schedule_second': '0',
     'schedule_day': '1', 'schedule_week': '2'},
    {'status': '', 'event': '', 'result': ''},
    {'status': 'removed', 'event': 'remove', 'result': 'aborted',
     'current_pid': 123},
])
def test_create_valid_schedules(api, client_id, schedule):
    job_id = helpers.create(api, 'jobs', helpers.job_body(
        client_id, job_schedule=schedule))
    stored = api.doc('jobs', job_id)['job_schedule']
    for key, value in schedule.items():
        assert stored[key] == value


def test_create_keeps_session_name_and_extra_action_keys(api, client_id):
    actions = [{'freezer_action': helpers.freezer_action(
        snapshot=True, remove_older_than=30, custom='x'),
        'max_retries': 1, 'custom_entry_key': 'y'}]
    job_id = helpers.create(api, 'jobs', helpers.job_body(
        client_id, actions=actions, session_name='nightly'))
    doc = api.doc('jobs', job_id)
    assert doc['session_name'] == 'nightly'
    assert doc['job_actions'][0]['freezer_action'] == \
        actions[0]['freezer_action']
    assert doc['job_actions'][0]['custom_entry_key'] == 'y'


def test_delete_frees_id_for_create_of_actions(api, client_id):
    job_id = helpers.make_job(api, client_id)
    assert api.delete('jobs', job_id).status_code == 204
    assert api.list('jobs') == []
    assert_error(api.post('jobs', job_id, 'event', json={'start': None}),
                 404)
