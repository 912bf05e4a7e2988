"""/backups in both versions (spec §1.3 #1-4, §2.1, D13, D14)."""

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error


@pytest.mark.parametrize('slash', [False, True])
def test_create_get_list_delete(api, slash):
    body = helpers.backup_body(extra_field={'nested': [1, 2]})
    resp = api.post('backups', json=body, slash=slash)
    assert resp.status_code == 201, resp.text
    assert list(resp.json) == ['backup_id']
    backup_id = resp.json['backup_id']
    assert helpers.HEX_ID.match(backup_id)

    resp = api.get('backups', backup_id)
    assert resp.status_code == 200
    doc = resp.json
    assert doc['backup_id'] == backup_id
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert doc['user_name'] == 'alice'
    assert doc['backup_metadata'] == body
    assert isinstance(doc['_version'], int)
    assert resp.headers['etag'] == f'"{doc["_version"]}"'

    resp = api.get('backups', slash=slash, query='limit=10')
    assert resp.status_code == 200
    assert resp.json == {'backups': [helpers.strip_version(doc)]}

    resp = api.delete('backups', backup_id, slash=slash)
    assert resp.status_code == 204
    assert resp.text == ''
    assert_error(api.get('backups', backup_id), 404)
    assert_error(api.delete('backups', backup_id), 404)
    assert api.list('backups') == []


def test_user_name_header_recorded(api):
    resp = api.post('backups', json=helpers.backup_body(),
                    headers={'X-User-Name': 'Alice Liddell'})
    assert resp.status_code == 201
    doc = api.doc('backups', resp.json['backup_id'])
    assert doc['user_name'] == 'Alice Liddell'


def test_host_name_alternative_is_accepted(api):
    body = helpers.backup_body()
    del body['hostname']
    body['host_name'] = 'node1.example.org'
    backup_id = helpers.create(api, 'backups', body)
    assert api.doc('backups', backup_id)['backup_metadata'] == body


def test_minimal_metadata_is_accepted(api):
    body = {'container': 'c', 'hostname': 'h', 'backup_name': 'b'}
    backup_id = helpers.create(api, 'backups', body)
    assert api.doc('backups', backup_id)['backup_metadata'] == body


def test_server_ids_in_body_do_not_choose_the_id(api):
    body = helpers.backup_body(backup_id='mine')
    backup_id = helpers.create(api, 'backups', body)
    assert backup_id != 'mine'
    assert helpers.HEX_ID.match(backup_id)
    assert_error(api.get('backups', 'mine'), 404)


@pytest.mark.parametrize('field', ['container', 'hostname', 'backup_name'])
@pytest.mark.parametrize('value', [helpers._MISSING, '', None, 5, ['x'],
                                   {'a': 'b'}, True])
def test_required_fields(api, field, value):
    body = helpers.backup_body()
    if value is helpers._MISSING:
        del body[field]
    else:
        body[field] = value
    assert_error(api.post('backups', json=body), 400)
    assert api.list('backups') == []


def test_both_host_fields_missing_or_empty(api):
    body = helpers.backup_body()
    del body['hostname']
    body['host_name'] = ''
    assert_error(api.post('backups', json=body), 400)
    body['hostname'] = ''
    assert_error(api.post('backups', json=body), 400)
    assert api.list('backups') == []


@pytest.mark.parametrize('field,value', [
    ('time_stamp', 'yesterday'),
    ('time_stamp', '1700000000'),
    ('time_stamp', True),
    ('time_stamp', 1.5),
    ('curr_backup_level', '0'),
    ('level', 'one'),
    ('max_level', [5]),
    ('total_fs_files', 'many'),
    ('backup_size_uncompressed', '10'),
    ('backup_size_compressed', {'mb': 1}),
    ('total_directories', False),
    ('total_broken_links', 'x'),
    ('encrypted', 'yes'),
    ('encrypted', 1),
    ('broken_links', 'a'),
    ('broken_links', [1, 2]),
    ('excluded_files', {'a': 1}),
    ('mode', 5),
    ('fs_real_path', ['a']),
    ('client_os', 7),
    ('compression_alg', False),
])
def test_typed_fields(api, field, value):
    assert_error(api.post('backups', json=helpers.backup_body(
        **{field: value})), 400)
    assert api.list('backups') == []


@pytest.mark.parametrize('body', [None, [], [helpers.backup_body()], 'x',
                                  5, {}])
def test_non_object_or_empty_body(api, body):
    assert_error(api.post('backups', json=body), 400)
    assert api.list('backups') == []


def test_empty_body(api):
    assert_error(api.post('backups', body=''), 400)
    assert api.list('backups') == []


def test_get_unknown(api):
    assert_error(api.get('backups', 'a' * 32), 404)
    assert_error(api.delete('backups', 'a' * 32), 404)


@pytest.mark.parametrize('status', ['available', 'creating', 'restoring',
                                    'deleting', 'error'])
def test_patch_status(api, status):
    backup_id = helpers.make_backup(api)
    before = api.doc('backups', backup_id)
    resp = api.patch('backups', backup_id, json={'status': status})
    assert resp.status_code == 200, resp.text
    assert resp.json == {'backup_id': backup_id,
                         'version': before['_version'] + 1}
    after = api.doc('backups', backup_id)
    assert after['status'] == status
    assert after['_version'] == before['_version'] + 1
    assert after['backup_metadata'] == before['backup_metadata']


@pytest.mark.parametrize('patch', [
    {'status': 'bogus'}, {'status': ''}, {'status': 1}, {'status': None},
    {'status': ['available']}, [], 'available', None,
])
def test_patch_status_invalid(api, patch):
    backup_id = helpers.make_backup(api)
    before = api.doc('backups', backup_id)
    assert_error(api.patch('backups', backup_id, json=patch), 400)
    assert api.doc('backups', backup_id) == before


def test_patch_cannot_change_metadata(api):
    backup_id = helpers.make_backup(api)
    before = api.doc('backups', backup_id)
    resp = api.patch('backups', backup_id,
                     json={'backup_metadata': {'container': 'other'}})
    assert_error(resp, 400)
    assert api.doc('backups', backup_id) == before


def test_patch_unknown_backup(api):
    assert_error(api.patch('backups', 'f' * 32,
                           json={'status': 'available'}), 404)
    assert api.list('backups') == []


def test_patch_if_match(api):
    backup_id = helpers.make_backup(api)
    version = api.doc('backups', backup_id)['_version']
    resp = api.patch('backups', backup_id, json={'status': 'error'},
                     headers={'If-Match': str(version + 1)})
    assert_error(resp, 412)
    assert 'status' not in api.doc('backups', backup_id)
    resp = api.patch('backups', backup_id, json={'status': 'error'},
                     headers={'If-Match': f'"{version}"'})
    assert resp.status_code == 200
    assert resp.json['version'] == version + 1


def test_each_create_gets_a_new_id(api):
    ids = {helpers.make_backup(api) for _ in range(5)}
    assert len(ids) == 5
    assert sorted(api.ids('backups')) == sorted(ids)


def test_agent_metadata_with_unicode_and_large_values(api):
    body = helpers.backup_body(path_to_backup='/srv/données/日本',
                               backup_size_uncompressed=2 ** 40,
                               note='x' * 10000)
    backup_id = helpers.create(api, 'backups', body)
    assert api.doc('backups', backup_id)['backup_metadata'] == body


# -- regressions found while documenting the API (OpenAPI review); moved
# as they were from tests/api/test_review_fixes.py -------------------------


def test_agent_metadata_with_empty_strings_for_unset_options(client):
    # freezer-agent 19.0.0 posts "max_level": "" when no max level is set
    api = helpers.Api(client, 'v2')
    resp = api.post('backups', json={
        'container': '/tmp/store', 'backup_name': 'b', 'hostname': 'h',
        'max_level': '', 'always_level': '', 'encrypted': '',
        'mode': '', 'level': 0})
    assert resp.status_code == 201, resp.text
    meta = api.doc('backups', resp.json['backup_id'])['backup_metadata']
    assert meta['max_level'] is None and meta['encrypted'] is None
    assert meta['always_level'] == '' and meta['mode'] == ''
    assert meta['level'] == 0
    # a wrong type is still refused
    assert_error(api.post('backups', json={
        'container': 'c', 'backup_name': 'b', 'hostname': 'h',
        'max_level': 'five'}), 400)
