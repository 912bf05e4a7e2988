"""/clients in both versions (spec §1.3 #5-8, §2.2, D12, D14)."""

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error

SUPPORTED = {
    'supported_actions': ['backup', 'restore', 'info', 'admin', 'exec'],
    'supported_modes': ['fs', 'mongo', 'mysql', 'sqlserver', 'cinder',
                        'glance', 'cindernative', 'nova'],
    'supported_storages': ['local', 'swift', 'ssh', 's3', 'ftp', 'ftps'],
    'supported_engines': ['tar', 'rsync', 'rsyncv2', 'nova', 'osbrick',
                          'glance'],
}


@pytest.mark.parametrize('slash', [False, True])
def test_register_get_list_delete(api, slash):
    info = {'client_id': 'proj-a_node1.example.org',
            'hostname': 'node1.example.org', 'description': 'db node'}
    resp = api.post('clients', json=info, slash=slash)
    assert resp.status_code == 201, resp.text
    assert resp.json == {'client_id': 'proj-a_node1.example.org'}

    resp = api.get('clients', 'proj-a_node1.example.org')
    assert resp.status_code == 200
    doc = resp.json
    client = doc['client']
    assert client['client_id'] == info['client_id']
    assert client['hostname'] == info['hostname']
    assert client['description'] == info['description']
    assert helpers.HEX_ID.match(client['uuid'])
    # registered without them, a client shows the full lists (upstream)
    for name, values in SUPPORTED.items():
        assert client[name] == values
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
    assert isinstance(doc['_version'], int)

    resp = api.get('clients', slash=slash)
    assert resp.status_code == 200
    assert resp.json == {'clients': [helpers.strip_version(doc)]}

    resp = api.delete('clients', info['client_id'], slash=slash)
    assert resp.status_code == 204
    assert_error(api.get('clients', info['client_id']), 404)
    assert_error(api.delete('clients', info['client_id']), 404)
    assert api.list('clients') == []


def test_register_keeps_given_uuid_and_supported_lists(api):
    info = {'client_id': 'node2', 'uuid': 'my-uuid-1',
            'supported_actions': ['backup'], 'supported_modes': ['fs'],
            'supported_storages': ['swift', 'local'],
            'supported_engines': ['tar']}
    helpers.create(api, 'clients', info)
    client = api.doc('clients', 'node2')['client']
    for key, value in info.items():
        assert client[key] == value


def test_missing_lists_get_the_full_ones_given_ones_are_kept(api):
    helpers.create(api, 'clients', {'client_id': 'node3',
                                    'supported_modes': ['fs']})
    client = api.doc('clients', 'node3')['client']
    assert client['supported_modes'] == ['fs']
    for name in ('supported_actions', 'supported_storages',
                 'supported_engines'):
        assert client[name] == SUPPORTED[name]
    # a search finds what a document shows
    assert api.ids('clients', {'match': [
        {'supported_engines': 'osbrick'}]}) == ['node3']


def test_scheduler_registration_body(api):
    body = {'client_id': 'proj-a_compute-1', 'hostname': 'compute-1',
            **SUPPORTED}
    resp = api.post('clients/', json=body)
    assert resp.status_code == 201
    assert resp.json == {'client_id': 'proj-a_compute-1'}


def test_duplicate_is_409_and_keeps_the_first(api):
    helpers.register_client(api, 'node1', description='first')
    before = api.doc('clients', 'proj-a_node1')
    resp = api.post('clients', json={'client_id': 'proj-a_node1',
                                     'description': 'second'})
    assert_error(resp, 409)
    assert api.doc('clients', 'proj-a_node1') == before
    assert len(api.list('clients')) == 1


def test_duplicate_in_v2_by_another_project_member(v2):
    helpers.register_client(v2, 'node1')
    other = v2.as_(user='dave')
    assert_error(other.post('clients', json={'client_id': 'proj-a_node1'}),
                 409)
    assert len(v2.list('clients')) == 1


def test_same_client_id_in_other_project(api):
    helpers.register_client(api, 'shared', client_id='shared-host')
    other = api.as_(user='carol', project=helpers.PROJECT_B)
    helpers.register_client(other, 'shared', client_id='shared-host')
    assert other.doc('clients', 'shared-host')['project_id'] == \
        helpers.PROJECT_B
    assert api.doc('clients', 'shared-host')['project_id'] == \
        helpers.PROJECT_A


def test_reregister_after_delete(api):
    helpers.register_client(api, 'node1', description='first')
    assert api.delete('clients', 'proj-a_node1').status_code == 204
    helpers.register_client(api, 'node1', description='again')
    assert api.doc('clients', 'proj-a_node1')['client']['description'] == \
        'again'


@pytest.mark.parametrize('body', [
    {},
    {'hostname': 'x'},
    {'client_id': ''},
    {'client_id': 5},
    {'client_id': None},
    {'client_id': ['a']},
    {'client_id': 'bad id!'},
    {'client_id': 'proj_-bad-.example'},
    {'client_id': 'a' * 300},
    {'client_id': 'ok', 'hostname': 5},
    {'client_id': 'ok', 'description': ['x']},
    {'client_id': 'ok', 'uuid': 7},
    {'client_id': 'ok', 'supported_actions': 'backup'},
    {'client_id': 'ok', 'supported_actions': ['bogus']},
    {'client_id': 'ok', 'supported_modes': ['fs', 'tape']},
    {'client_id': 'ok', 'supported_storages': ['floppy']},
    {'client_id': 'ok', 'supported_engines': [1]},
    {'client_id': 'ok', 'supported_engines': None},
    [], ['ok'], 'ok', 5, None,
])
def test_register_invalid(api, body):
    assert_error(api.post('clients', json=body), 400)
    assert api.list('clients') == []


def test_get_unknown(api):
    assert_error(api.get('clients', 'nobody'), 404)
    assert_error(api.delete('clients', 'nobody'), 404)


@pytest.mark.parametrize('patch', [
    {'hostname': 'renamed.example.org'},
    {'description': 'new description'},
    {'supported_actions': ['backup', 'restore']},
    {'supported_modes': ['mysql']},
    {'supported_storages': ['ssh']},
    {'supported_engines': ['rsync']},
    {'hostname': 'h2', 'description': 'd2', 'supported_actions': ['info']},
])
def test_patch(api, patch):
    helpers.register_client(api, 'node1', description='before',
                            supported_actions=['backup'])
    before = api.doc('clients', 'proj-a_node1')
    resp = api.patch('clients', 'proj-a_node1', json=patch)
    assert resp.status_code == 200, resp.text
    assert resp.json == {'client_id': 'proj-a_node1',
                         'version': before['_version'] + 1}
    after = api.doc('clients', 'proj-a_node1')
    expected = dict(before['client'], **patch)
    assert after['client'] == expected
    assert after['user_id'] == before['user_id']
    assert after['project_id'] == before['project_id']
    assert after['_version'] == before['_version'] + 1


@pytest.mark.parametrize('patch', [
    {'hostname': 5},
    {'description': None},
    {'supported_actions': 'backup'},
    {'supported_actions': ['bogus']},
    {'supported_modes': [None]},
    {'hostname': 'ok', 'is_central': 'yes'},
    {'hostname': 'ok', 'unknown_key': 1},
    [], 'x', None,
])
def test_patch_invalid(api, patch):
    helpers.register_client(api, 'node1')
    before = api.doc('clients', 'proj-a_node1')
    assert_error(api.patch('clients', 'proj-a_node1', json=patch), 400)
    assert api.doc('clients', 'proj-a_node1') == before
    assert_error(api.get('clients', 'another-id'), 404)


def test_patch_unknown(api):
    assert_error(api.patch('clients', 'nobody',
                           json={'description': 'x'}), 404)
    assert api.list('clients') == []


def test_patch_if_match(api):
    helpers.register_client(api, 'node1')
    version = api.doc('clients', 'proj-a_node1')['_version']
    resp = api.patch('clients', 'proj-a_node1', json={'description': 'x'},
                     headers={'If-Match': str(version - 1)})
    assert_error(resp, 412)
    assert 'description' not in api.doc('clients', 'proj-a_node1')['client']


def test_patch_server_fields_ignored(api):
    # D6: ids, user_id and project_id in a patch are ignored
    helpers.register_client(api, 'node1')
    uuid = api.doc('clients', 'proj-a_node1')['client']['uuid']
    resp = api.patch('clients', 'proj-a_node1',
                     json={'description': 'x', 'user_id': 'mallory',
                           'project_id': 'elsewhere',
                           'client_id': 'proj-a_node1', 'uuid': uuid})
    assert resp.status_code == 200, resp.text
    resp = api.patch('clients', 'proj-a_node1',
                     json={'description': 'y', 'client_id': 'another-id',
                           'uuid': 'other-uuid'})
    assert resp.status_code == 200, resp.text
    doc = api.doc('clients', 'proj-a_node1')
    assert doc['client']['description'] == 'y'
    assert doc['client']['client_id'] == 'proj-a_node1'
    assert doc['client']['uuid'] == uuid
    assert_error(api.get('clients', 'another-id'), 404)
    assert doc['user_id'] == 'alice'
    assert doc['project_id'] == helpers.PROJECT_A
