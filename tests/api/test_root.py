"""GET /, the JSON home documents, /healthcheck and routing errors
(spec §1.1, §1.2, D1, D3, D17)."""

import falcon.testing
import pytest

from freezer_api.api import app as app_module
from freezer_api.api import context
from tests.api import helpers
from tests.conftest import make_conf


def test_versions_lists_v2_then_v1(client):
    resp = client.simulate_get('/')
    assert resp.status_code == 300
    assert resp.headers['content-type'].startswith('application/json')
    versions = resp.json['versions']
    assert [v['id'] for v in versions] == ['v2', 'v1']
    for entry in versions:
        assert set(entry) == {'id', 'status', 'updated', 'links'}
        assert isinstance(entry['status'], str) and entry['status']
        assert isinstance(entry['updated'], str) and entry['updated']
    assert versions[0]['links'] == [
        {'href': 'http://falconframework.org/v2/', 'rel': 'self'}]
    assert versions[1]['links'] == [
        {'href': 'http://falconframework.org/v1/', 'rel': 'self'}]


def test_versions_needs_no_identity_headers(client):
    resp = client.simulate_get('/', headers={})
    assert resp.status_code == 300
    assert len(resp.json['versions']) == 2


def test_versions_hrefs_follow_each_request_host(client):
    first = client.simulate_get(
        '/', headers={'Host': 'backup.example.org:9090'})
    second = client.simulate_get('/', headers={'Host': 'other.example.net'})
    third = client.simulate_get('/', protocol='https',
                                headers={'Host': 'secure.example.com'})
    assert [v['links'][0]['href'] for v in first.json['versions']] == [
        'http://backup.example.org:9090/v2/',
        'http://backup.example.org:9090/v1/']
    assert [v['links'][0]['href'] for v in second.json['versions']] == [
        'http://other.example.net/v2/', 'http://other.example.net/v1/']
    assert [v['links'][0]['href'] for v in third.json['versions']] == [
        'https://secure.example.com/v2/', 'https://secure.example.com/v1/']


@pytest.mark.parametrize('enabled,expected', [
    ({'api.enable_v1_api': False}, ['v2']),
    ({'api.enable_v2_api': False}, ['v1']),
])
def test_versions_lists_only_enabled(tmp_path, storage, clock, enabled,
                                     expected):
    conf = make_conf(tmp_path, **enabled)
    app = context.NoAuthMiddleware(
        app_module.create_app(conf, storage, clock=clock), conf)
    client = falcon.testing.TestClient(app)
    resp = client.simulate_get('/')
    assert resp.status_code == 300
    assert [v['id'] for v in resp.json['versions']] == expected
    disabled = 'v1' if expected == ['v2'] else 'v2'
    path = '/v1/jobs' if disabled == 'v1' else f'/v2/{helpers.PROJECT_A}/jobs'
    headers = {'X-User-Id': 'alice', 'X-Project-Id': helpers.PROJECT_A}
    helpers.assert_error(client.simulate_get(path, headers=headers), 404)
    helpers.assert_error(client.simulate_get(f'/{disabled}',
                                             headers=headers), 404)


@pytest.mark.parametrize('slash', [False, True])
def test_v1_home_document(v1, slash):
    resp = v1.client.simulate_get('/v1/' if slash else '/v1',
                                  headers=v1.headers)
    assert resp.status_code == 200
    assert resp.headers['content-type'].startswith('application/json-home')
    assert resp.json == {'resources': {'rel/backups': {
        'href-template': '/v1/backups/{backup_id}',
        'href-vars': {'backup_id': 'param/backup_id'},
        'hints': {'allow': ['GET'],
                  'formats': {'application/json': {}}}}}}


@pytest.mark.parametrize('slash', [False, True])
def test_v2_home_document(v2, slash):
    resp = v2.client.simulate_get('/v2/' if slash else '/v2',
                                  headers=v2.headers)
    assert resp.status_code == 200
    assert resp.headers['content-type'].startswith('application/json-home')
    assert resp.json == {'resources': {'rel/backups': {
        'href-template': '/v2/{project_id}/backups/{backup_id}',
        'href-vars': {'backup_id': 'param/backup_id',
                      'project_id': 'param/project_id'},
        'hints': {'allow': ['GET'],
                  'formats': {'application/json': {}}}}}}


def test_healthcheck(client):
    resp = client.simulate_get('/healthcheck', headers={})
    assert resp.status_code == 200
    assert resp.text == 'OK'


def test_unknown_path_is_json_404(api):
    helpers.assert_error(api.get('nothing-here'), 404)
    helpers.assert_error(
        api.client.simulate_get('/v3/jobs', headers=api.headers), 404)


@pytest.mark.parametrize('method,parts', [
    ('PUT', ('jobs',)),
    ('DELETE', ('jobs',)),
    ('PATCH', ('backups',)),
    ('POST', ('backups', 'abc')),
    ('PUT', ('backups', 'abc')),
    ('GET', ('jobs', 'abc', 'event')),
    ('GET', ('sessions', 'abc', 'action')),
    ('GET', ('sessions', 'abc', 'jobs', 'def')),
    ('POST', ('sessions', 'abc', 'jobs', 'def')),
])
def test_unsupported_method_is_405_with_allow(api, method, parts):
    resp = api.call(method, *parts)
    helpers.assert_error(resp, 405)
    assert resp.headers.get('allow'), resp.headers
    assert method not in [m.strip() for m in resp.headers['allow'].split(',')]


@pytest.mark.parametrize('accept', ['text/html', 'text/html, text/plain',
                                    'application/xml'])
def test_non_json_accept_is_406(api, accept):
    resp = api.get('jobs', headers={'Accept': accept})
    helpers.assert_error(resp, 406)
    resp = api.post('backups', json=helpers.backup_body(),
                    headers={'Accept': accept})
    helpers.assert_error(resp, 406)
    assert api.list('backups') == []


@pytest.mark.parametrize('accept', ['*/*', 'application/json',
                                    'text/html;q=0.9, application/json',
                                    'application/*'])
def test_json_compatible_accept_is_served(api, accept):
    assert api.get('jobs', headers={'Accept': accept}).status_code == 200


def test_missing_accept_is_served(api):
    headers = dict(api.headers)
    del headers['Accept']
    resp = api.client.simulate_get(api.path('jobs'), headers=headers)
    assert resp.status_code == 200
    assert resp.json == {'jobs': []}


# -- regressions found while documenting the API (OpenAPI review); moved
# as they were from tests/api/test_review_fixes.py -------------------------


def test_home_documents_and_health_answer_their_own_media_types(client):
    resp = client.simulate_get('/v2', headers={
        'Accept': 'application/json-home', 'X-Project-Id': 'proj-a'})
    assert resp.status_code == 200
    assert resp.headers['content-type'].startswith('application/json-home')
    resp = client.simulate_get('/healthcheck',
                               headers={'Accept': 'text/plain'})
    assert resp.status_code == 200 and resp.text == 'OK'
    # what a resource does not serve is still refused
    helpers.assert_error(client.simulate_get('/v2/proj-a/jobs', headers={
        'Accept': 'text/plain', 'X-Project-Id': 'proj-a'}), 406)
    helpers.assert_error(client.simulate_get(
        '/healthcheck', headers={'Accept': 'image/png'}), 406)
