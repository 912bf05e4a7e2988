"""/actions in both versions (spec §1.3 #16-21, §2.4, D6, D7, D11, D14)."""

import copy

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error


@pytest.mark.parametrize('slash', [False, True])
def test_create_get_list_delete(api, slash):
    body = helpers.action_body(extra_top='kept')
    resp = api.post('actions', json=body, slash=slash)
    assert resp.status_code == 201, resp.text
    assert list(resp.json) == ['action_id']
    action_id = resp.json['action_id']
    assert helpers.HEX_ID.match(action_id)

    resp = api.get('actions', action_id)
    assert resp.status_code == 200
    doc = resp.json
    assert doc['action_id'] == action_id
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    for key, value in body.items():
        assert doc[key] == value
    assert isinstance(doc['_version'], int)
    assert resp.headers['etag'] == f'"{doc["_version"]}"'

    resp = api.get('actions', slash=slash)
    assert resp.json == {'actions': [helpers.strip_version(doc)]}

    assert api.delete('actions', action_id, slash=slash).status_code == 204
    assert_error(api.get('actions', action_id), 404)
    assert_error(api.delete('actions', action_id), 404)
    assert api.list('actions') == []


def test_given_action_id_is_honoured_then_409(api):
    resp = api.post('actions', json=helpers.action_body(action_id='my-act'))
    assert resp.status_code == 201
    assert resp.json == {'action_id': 'my-act'}
    before = api.doc('actions', 'my-act')
    resp = api.post('actions', json=helpers.action_body(
        action_id='my-act', max_retries=9))
    assert_error(resp, 409)
    assert api.doc('actions', 'my-act') == before
    assert api.ids('actions') == ['my-act']


def test_given_action_id_of_other_owner_is_409(api):
    other = api.as_(user='carol', project=helpers.PROJECT_B)
    helpers.create(other, 'actions', helpers.action_body(action_id='taken'))
    before = other.doc('actions', 'taken')
    resp = api.post('actions', json=helpers.action_body(
        action_id='taken', freezer_action={'action': 'restore'}))
    assert_error(resp, 409)
    assert other.doc('actions', 'taken') == before
    assert api.list('actions') == []


def test_given_action_id_of_other_user_in_v1_is_409(v1):
    bob = v1.as_(user='bob')
    helpers.create(bob, 'actions', helpers.action_body(action_id='taken'))
    before = bob.doc('actions', 'taken')
    assert_error(v1.post('actions', json=helpers.action_body(
        action_id='taken')), 409)
    assert bob.doc('actions', 'taken') == before


def test_recreate_after_delete(api):
    helpers.create(api, 'actions', helpers.action_body(action_id='again'))
    assert api.delete('actions', 'again').status_code == 204
    resp = api.post('actions', json=helpers.action_body(
        action_id='again', max_retries=7))
    assert resp.status_code == 201, resp.text
    assert api.doc('actions', 'again')['max_retries'] == 7


def test_server_fields_in_create_body_ignored(api):
    action_id = helpers.make_action(api, user_id='mallory',
                                    project_id='elsewhere')
    doc = api.doc('actions', action_id)
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A


@pytest.mark.parametrize('slash', [False, True])
def test_replace(api, slash):
    action_id = helpers.make_action(api, extra_top='old')
    before = api.doc('actions', action_id)
    new = {'freezer_action': {'action': 'restore', 'mode': 'mysql',
                              'restore_abs_path': '/restore'},
           'max_retries': 1}
    resp = api.post('actions', action_id, json=new, slash=slash)
    assert resp.status_code == 201, resp.text
    assert resp.json == {'action_id': action_id,
                         'version': before['_version'] + 1}
    doc = api.doc('actions', action_id)
    assert doc['freezer_action'] == new['freezer_action']
    assert doc['max_retries'] == 1
    assert 'extra_top' not in doc
    assert 'mandatory' not in doc
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert doc['action_id'] == action_id


def test_replace_unknown_id_creates(api):
    resp = api.post('actions', 'fresh-action', json=helpers.action_body())
    assert resp.status_code == 201, resp.text
    assert resp.json['action_id'] == 'fresh-action'
    assert api.ids('actions') == ['fresh-action']


def test_replace_after_delete(api):
    action_id = helpers.make_action(api)
    assert api.delete('actions', action_id).status_code == 204
    resp = api.post('actions', action_id,
                    json=helpers.action_body(max_retries=4))
    assert resp.status_code == 201, resp.text
    assert api.doc('actions', action_id)['max_retries'] == 4


def test_replace_if_match(api):
    action_id = helpers.make_action(api)
    before = api.doc('actions', action_id)
    assert_error(api.post('actions', action_id,
                          json=helpers.action_body(max_retries=0),
                          headers={'If-Match': '999'}), 412)
    assert api.doc('actions', action_id) == before


def test_patch_deep_merges(api):
    action_id = helpers.make_action(api)
    before = api.doc('actions', action_id)
    resp = api.patch('actions', action_id, json={
        'freezer_action': {'mode': 'mysql', 'snapshot': True},
        'max_retries': 9})
    assert resp.status_code == 200, resp.text
    assert resp.json == {'action_id': action_id,
                         'version': before['_version'] + 1}
    expected = copy.deepcopy(before)
    expected['freezer_action'].update(mode='mysql', snapshot=True)
    expected['max_retries'] = 9
    expected['_version'] += 1
    assert api.doc('actions', action_id) == expected


def test_patch_ignores_server_fields(api):
    action_id = helpers.make_action(api)
    resp = api.patch('actions', action_id, json={
        'action_id': 'other', 'user_id': 'mallory',
        'project_id': 'elsewhere', 'max_retries': 1})
    assert resp.status_code == 200, resp.text
    doc = api.doc('actions', action_id)
    assert doc['action_id'] == action_id
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert doc['max_retries'] == 1
    assert_error(api.get('actions', 'other'), 404)


@pytest.mark.parametrize('patch', [
    {'freezer_action': 'backup'},
    {'freezer_action': None},
    {'freezer_action': {'action': 'bad action'}},
    {'freezer_action': {'mode': ['fs']}},
    {'freezer_action': {'backup_name': 1}},
    {'max_retries': 'x'},
    {'max_retries_interval': None},
    {'mandatory': 'true'},
    [], 'x', None, 1,
])
def test_patch_invalid(api, patch):
    action_id = helpers.make_action(api)
    before = api.doc('actions', action_id)
    assert_error(api.patch('actions', action_id, json=patch), 400)
    assert api.doc('actions', action_id) == before


def test_patch_unknown(api):
    assert_error(api.patch('actions', 'f' * 32, json={'max_retries': 1}),
                 404)
    assert api.list('actions') == []


def test_patch_if_match(api):
    action_id = helpers.make_action(api)
    version = api.doc('actions', action_id)['_version']
    assert_error(api.patch('actions', action_id, json={'max_retries': 0},
                           headers={'If-Match': str(version + 1)}), 412)
    resp = api.patch('actions', action_id, json={'max_retries': 0},
                     headers={'If-Match': str(version)})
    assert resp.status_code == 200
    assert resp.json['version'] == version + 1


@pytest.mark.parametrize('body', [
    {},
    {'max_retries': 1},
    {'freezer_action': None},
    {'freezer_action': 'backup'},
    {'freezer_action': ['backup']},
    {'freezer_action': {'action': 'two words'}},
    {'freezer_action': {'mode': 3}},
    {'freezer_action': {'path_to_backup': False}},
    {'freezer_action': {'container': []}},
    {'freezer_action': {}, 'max_retries': '1'},
    {'freezer_action': {}, 'max_retries_interval': 'x'},
    {'freezer_action': {}, 'mandatory': 'no'},
    {'freezer_action': {}, 'action_id': 'bad id!'},
    {'freezer_action': {}, 'action_id': 5},
    {'freezer_action': {}, 'action_id': 'x' * 300},
    [], [helpers.action_body()], 'x', 5, None,
])
def test_create_invalid(api, body):
    assert_error(api.post('actions', json=body), 400)
    assert api.list('actions') == []


@pytest.mark.parametrize('action_id', ['bad id!', 'a.b', 'x' * 300])
def test_replace_with_invalid_url_id(api, action_id):
    resp = api.post('actions', action_id, json=helpers.action_body())
    helpers.assert_client_error(resp)
    assert resp.status_code in (400, 404)
    assert api.list('actions') == []
