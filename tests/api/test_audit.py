"""The audit trail over HTTP (issue 16.3): every write through the API
leaves a record, project managers and admins read them, nobody writes
them, and the chain verifies."""

import pytest

from freezer_api.core import audit
from tests.api import helpers
from tests.api.helpers import PROJECT_A
from tests.api.helpers import PROJECT_B
from tests.api.helpers import assert_error


def trail(api, query='limit=1000', roles='manager'):
    reader = api.as_(roles=roles, version='v2')
    resp = reader.get('audit', query=query)
    assert resp.status_code == 200, resp.text
    assert list(resp.json) == ['audit']
    return resp.json['audit']


def test_every_write_leaves_a_record(api, storage):
    client_id = helpers.register_client(api, 'node1')
    job_id = helpers.make_job(api, client_id, description='first')
    assert api.patch('jobs', job_id,
                     json={'description': 'second'}).status_code == 200
    assert api.delete('jobs', job_id).status_code == 204
    records = trail(api)
    job_records = [r for r in records if r['kind'] == 'jobs']
    assert [r['action'] for r in job_records] == [
        'created', 'updated', 'deleted']
    created, updated, deleted = job_records
    assert updated['fields'] == ['description']
    assert updated['version'] == 2 and deleted['version'] is None
    assert {r['doc_id'] for r in job_records} == {job_id}
    for record in records:
        assert record['user_id'] == 'alice'
        assert record['user_project_id'] == PROJECT_A
        assert record['project_id'] == PROJECT_A
        assert record['roles'] == ['member', 'reader']
        assert record['result'] == 'success'
        assert record['time'].endswith('Z')
    prefix = '/v1' if api.version == 'v1' else '/v2/{project_id}'
    assert updated['method'] == 'PATCH'
    assert updated['route'] == prefix + '/jobs/{job_id}'
    assert [r['seq'] for r in records] == list(range(1, len(records) + 1))
    assert audit.verify(PROJECT_A, storage.audit_chain(
        PROJECT_A, 0, 1000)).ok


def test_values_never_reach_the_trail(v2):
    helpers.make_backup(v2, storage={'password': 'hunter2-secret'})
    records = trail(v2)
    assert records and 'hunter2' not in repr(records)


def test_reads_and_refused_writes_record_nothing(v2):
    job_id = helpers.make_job(v2)
    before = trail(v2)
    v2.get('jobs', job_id)
    v2.list('jobs')
    assert_error(v2.patch('jobs', job_id, body='{not json'), 400)
    assert_error(v2.patch('jobs', 'missing', json={}), 404)
    assert trail(v2) == before


def test_a_patch_that_changes_nothing_records_nothing(v2):
    job_id = helpers.make_job(v2, description='same')
    before = trail(v2)
    assert v2.patch('jobs', job_id,
                    json={'description': 'same'}).status_code == 200
    assert trail(v2) == before


def test_request_id_is_recorded(v2):
    helpers.make_backup(v2)
    # create_app alone runs without the request_id filter: no id
    assert trail(v2)[-1]['request_id'] is None


@pytest.mark.parametrize('roles', ['member,reader', 'reader', 'member'])
def test_members_and_readers_may_not_read_it(v2, roles):
    assert_error(v2.as_(roles=roles).get('audit'), 403)


def test_admin_reads_every_project(v2):
    helpers.make_backup(v2)
    helpers.make_backup(v2.as_(user='bob', project=PROJECT_B))
    admin = v2.as_(roles='admin')
    resp = admin.get('audit', query='all_projects=true')
    assert resp.status_code == 200
    assert {r['project_id'] for r in resp.json['audit']} == {
        PROJECT_A, PROJECT_B}
    assert_error(v2.as_(roles='manager').get(
        'audit', query='all_projects=true'), 403)
    # a manager of A cannot read B's
    assert_error(v2.as_(roles='manager', url_project=PROJECT_B).get(
        'audit'), 403)
    other = admin.as_(url_project=PROJECT_B).get('audit')
    assert {r['project_id'] for r in other.json['audit']} == {PROJECT_B}


def test_paging_and_time_filters(v2, clock):
    for _ in range(5):
        helpers.make_backup(v2)
        clock.advance(10)
    records = trail(v2)
    assert len(records) == 5
    times = [r['at'] for r in records]
    second = times[1] / 1e6
    assert [r['at'] for r in trail(
        v2, f'since={second}&until={times[3] / 1e6}')] == times[1:3]
    iso = records[1]['time']
    assert [r['at'] for r in trail(v2, f'since={iso}')] == times[1:]
    assert [r['seq'] for r in trail(v2, 'limit=2&offset=1')] == [2, 3]


@pytest.mark.parametrize('query', [
    'since=yesterday', 'until=', 'since=1e300', 'since=-5', 'limit=0',
    'since=20&until=10', 'since=1&since=2', 'all_projects=maybe'])
def test_bad_queries_are_400(v2, query):
    assert_error(v2.as_(roles='manager').get('audit', query=query), 400)


@pytest.mark.parametrize('method', ['POST', 'PUT', 'PATCH', 'DELETE'])
def test_the_trail_is_never_writable(v2, method):
    helpers.make_backup(v2)
    before = trail(v2)
    resp = v2.as_(roles='admin').call(method, 'audit', json={'seq': 1})
    assert_error(resp, 405)
    assert trail(v2) == before


def test_no_v1_route(v1):
    assert_error(v1.as_(roles='admin').get('audit'), 404)


def test_the_audit_operation_conforms_to_the_document(
        conf, storage, clock, policy_enforcer):
    import falcon.testing

    from freezer_api.api import app as app_module
    from freezer_api.api import context
    from freezer_api.api import openapi
    from tests.api.test_openapi import Conformance
    from tests.api.test_openapi import FaultyStorage

    faulty = FaultyStorage(storage)
    app = app_module.create_app(conf, faulty, enforcer=policy_enforcer,
                                clock=clock)
    check = Conformance(openapi.document(), falcon.testing.TestClient(
        context.NoAuthMiddleware(app, conf)))
    keystone = falcon.testing.TestClient(
        context.KeystoneContextMiddleware(app, conf))
    manager = {'X-Auth-Token': f'alice:{PROJECT_A}', 'X-Roles': 'manager',
               'Accept': 'application/json'}
    path = f'/v2/{PROJECT_A}/audit'
    check.send('POST', f'/v2/{PROJECT_A}/backups', json=helpers.backup_body(),
               headers={**manager, 'X-Roles': 'member'}, expect=201)
    listed = check.send('GET', path, headers=manager, expect=200,
                        query='limit=5&since=2000-01-01T00:00:00Z',
                        request_valid=True)
    assert len(listed.json['audit']) == 1
    check.send('GET', path, headers=manager, query='all_projects=true',
               expect=403)
    check.send('GET', path, headers={**manager, 'X-Roles': 'admin'},
               query='all_projects=true', expect=200, request_valid=True)
    check.send('GET', path, headers=manager, query='since=never',
               expect=400)
    check.send('GET', '/v2/bad.project/audit', headers=manager, expect=400,
               request_valid=False)
    check.send('GET', path, headers={**manager, 'Accept': 'text/html'},
               expect=406)
    check.send('GET', path, headers={}, expect=401, client=keystone)
    faulty.fault = 'unavailable'
    faulty.list_audit = lambda *args: faulty._check(False)
    check.send('GET', path, headers=manager, expect=503)
    assert check.missing_statuses(['/v2/{project_id}/audit']) == {}
