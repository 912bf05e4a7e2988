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
    if api.version == 'v1':
        # the seed's shape: the owner's name is kept
        assert doc['user_name'] == 'alice'
    else:
        # upstream's current shape, compared whole by its API test suite
        assert 'user_name' not in doc
    assert doc['status'] == 'available'
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


def test_user_name_header_recorded(v1, v2):
    resp = v1.post('backups', json=helpers.backup_body(),
                   headers={'X-User-Name': 'Alice Liddell'})
    assert resp.status_code == 201
    backup_id = resp.json['backup_id']
    assert v1.doc('backups', backup_id)['user_name'] == 'Alice Liddell'
    assert v1.list('backups')[0]['user_name'] == 'Alice Liddell'
    # v2 documents carry no user_name (spec D13), in GET and in lists
    assert 'user_name' not in v2.doc('backups', backup_id)
    assert 'user_name' not in v2.list('backups')[0]


def test_v2_shape_is_upstreams(v2):
    body = helpers.backup_body()
    backup_id = helpers.make_backup(v2, **body)
    doc = helpers.strip_version(v2.doc('backups', backup_id))
    assert doc == {'backup_id': backup_id, 'user_id': 'alice',
                   'project_id': helpers.PROJECT_A, 'status': 'available',
                   'backup_metadata': body}
    assert v2.list('backups') == [doc]
    # the status is a document field: a search finds it
    assert v2.ids('backups', {'match': [{'status': 'available'}]}) == [
        backup_id]
    assert v2.ids('backups', {'match': [{'status': 'error'}]}) == []


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
    ('time_stamp', True),
    ('time_stamp', '17e'),
    ('time_stamp', 'NaN'),
    ('time_stamp', 'nan'),
    ('time_stamp', 'inf'),
    ('time_stamp', '-Infinity'),
    ('time_stamp', '0x10'),
    ('time_stamp', '1_000'),
    ('time_stamp', '1e400'),
    ('time_stamp', '9' * 400),
    ('time_stamp', 2 ** 63),
    ('time_stamp', -2 ** 63 - 10),
    ('time_stamp', 1e300),
    ('level', 'one'),
    ('level', ' '),
    ('max_level', [5]),
    ('total_fs_files', 'many'),
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
    resp = api.post('backups', json=helpers.backup_body(**{field: value}))
    assert_error(resp, 400)
    assert field in resp.json['description']
    # a plain message, never Python's internals
    assert 'int_max_str_digits' not in resp.json['description']
    assert api.list('backups') == []


@pytest.mark.parametrize('field,value,stored', [
    ('time_stamp', '1700000000', 1700000000),
    ('time_stamp', ' 1700000000 ', 1700000000),
    ('time_stamp', 1700000000.0, 1700000000),
    ('time_stamp', 1700000000.5, 1700000000.5),
    ('time_stamp', '1.7e9', 1700000000),
    ('curr_backup_level', '0', 0),
    ('curr_backup_level', '+3', 3),
    ('level', 1.0, 1),
    ('level', '-1', -1),
    ('max_level', '', None),
    ('max_level', None, None),
    ('backup_size_uncompressed', '10', 10),
    ('backup_size_uncompressed', '10.25', 10.25),
    ('backup_size_compressed', 0.5, 0.5),
    ('backup_size_compressed', '.5', 0.5),
    ('total_fs_files', '1e3', 1000),
    ('total_directories', 2 ** 62, 2 ** 62),
    ('total_broken_links', '', None),
])
def test_numeric_fields_take_any_number(api, field, value, stored):
    # spec D13: agents send floats and numeric strings; the record is kept
    # with the number they mean, never refused for the type
    backup_id = helpers.make_backup(api, **{field: value})
    metadata = api.doc('backups', backup_id)['backup_metadata']
    assert metadata[field] == stored
    assert type(metadata[field]) is type(stored)


def test_float_and_string_time_stamps_are_searchable(api):
    old = helpers.make_backup(api, time_stamp='1600000000')
    new = helpers.make_backup(api, time_stamp=1700000000.5)
    assert api.ids('backups', {'time_after': 1650000000}) == [new]
    assert api.ids('backups', {'time_before': 1650000000}) == [old]


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
    # a new backup is available already: setting that changes nothing
    version = before['_version'] + (status != 'available')
    assert resp.json == {'backup_id': backup_id, 'version': version}
    after = api.doc('backups', backup_id)
    assert after['status'] == status
    assert after['_version'] == version
    assert after['backup_metadata'] == before['backup_metadata']


@pytest.mark.parametrize('patch', [
    {'status': 'bogus'}, {'status': ''}, {'status': 1}, {'status': None},
    {'status': ['available']}, [], 'available', None,
    {'backup_metadata': None}, {'backup_metadata': 'x'},
    {'backup_metadata': []},
    {'backup_metadata': {'container': ''}},
    {'backup_metadata': {'backup_name': None}},
    {'backup_metadata': {'hostname': None}},
    {'backup_metadata': {'time_stamp': 'yesterday'}},
    {'backup_metadata': {'level': '1e999'}},
    {'backup_metadata': {'encrypted': 'yes'}},
    {'status': 'error', 'backup_metadata': {'container': 5}},
    {'owner': 'me'},
])
def test_patch_status_invalid(api, patch):
    backup_id = helpers.make_backup(api)
    before = api.doc('backups', backup_id)
    assert_error(api.patch('backups', backup_id, json=patch), 400)
    assert api.doc('backups', backup_id) == before


def test_patch_merges_metadata(api):
    # python-freezerclient backups.update(id, {"backup_metadata": {...}})
    body = helpers.backup_body(extra_field={'nested': {'a': 1, 'b': 2}})
    backup_id = helpers.make_backup(api, **body)
    before = api.doc('backups', backup_id)
    resp = api.patch('backups', backup_id, json={
        'backup_metadata': {'container': 'other', 'level': '2',
                            'max_level': '', 'new_field': [1],
                            'extra_field': {'nested': {'b': 3}}}})
    assert resp.status_code == 200, resp.text
    assert resp.json == {'backup_id': backup_id,
                         'version': before['_version'] + 1}
    after = api.doc('backups', backup_id)
    expected = dict(body, container='other', level=2, max_level=None,
                    new_field=[1], extra_field={'nested': {'a': 1, 'b': 3}})
    assert after['backup_metadata'] == expected
    assert after['status'] == 'available'
    # status and metadata together, ids and owner fields ignored
    resp = api.patch('backups', backup_id, json={
        'status': 'error', 'backup_metadata': {'backup_name': 'renamed'},
        'backup_id': 'mine', 'user_id': 'mallory', 'project_id': 'other',
        'user_name': 'mallory'})
    assert resp.status_code == 200, resp.text
    after = api.doc('backups', backup_id)
    assert after['status'] == 'error'
    assert after['backup_metadata']['backup_name'] == 'renamed'
    assert (after['backup_id'], after['user_id'], after['project_id']) == (
        backup_id, 'alice', helpers.PROJECT_A)
    if api.version == 'v1':
        assert after['user_name'] == 'alice'


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
    assert api.doc('backups', backup_id)['status'] == 'available'
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
