"""Security hardening of the HTTP surface (issue 13).

Each test names the point of issue 13 it covers. Bad input is refused
before storage, so these run on SQLite only.
"""

import pytest

from freezer_api.core import schemas
from tests.api import helpers

BACKENDS = ('sqlite',)


# -- point 5: ids match whole strings ----------------------------------

@pytest.mark.parametrize('schema_id,doc', [
    ('ACTION', {'action_id': 'nl\n',
                'freezer_action': {'action': 'backup'}}),
    ('ACTION', {'freezer_action': {'action': 'backup\n'}}),
    ('CLIENT', {'client_id': 'node1\n', 'hostname': 'node1'}),
    ('CLIENT', {'client_id': 'node1', 'hostname': 'node1\n'}),
])
def test_id_patterns_refuse_a_final_newline(schema_id, doc):
    with pytest.raises(Exception) as raised:
        schemas.validate(getattr(schemas, schema_id), doc)
    assert 'does not match' in str(raised.value)


def test_whole_string_regex_keeps_escaped_dollars():
    assert schemas.whole_string_regex(r'^a\$$').search('a$')
    assert not schemas.whole_string_regex(r'^a\$$').search('a$\n')


def test_action_id_with_newline_is_refused_over_http(v2):
    resp = v2.post('actions', json={'action_id': 'nl\n',
                                    'freezer_action': {'action': 'backup'}})
    helpers.assert_error(resp, 400)
    assert v2.ids('actions') == []


def test_url_project_with_newline_is_refused(v2):
    admin = v2.as_(roles='admin', url_project='pa%0A')
    resp = admin.post('clients', json={'client_id': 'pa_node1',
                                       'hostname': 'node1'})
    helpers.assert_client_error(resp)
    assert admin.as_(url_project='pa').ids('clients') == []


# -- point 9: a responder without a policy rule is denied ----------------

class _RecordingApp:
    def __init__(self):
        self.routes = []

    def add_route(self, template, resource):
        self.routes.append((template, resource))


def _mounted_resources():
    """Every (template, resource) the application mounts."""
    from types import SimpleNamespace

    from freezer_api.api import routes
    conf = SimpleNamespace(api=SimpleNamespace(
        max_request_body_size=1, enable_v1_api=True, enable_v2_api=True))
    app = _RecordingApp()
    routes.add_routes(app, None, conf)
    return app.routes


def test_every_route_and_method_has_a_registered_rule():
    from freezer_api import policies
    from freezer_api.api.middleware import has_responder
    from freezer_api.api.resource import ANY_CALLER
    registered = {rule.name for rule in policies.list_rules()}
    checked = 0
    for template, resource in _mounted_resources():
        if resource.public:
            continue
        for method in ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE',
                       'OPTIONS'):
            if has_responder(resource, method):
                rule = resource.policies.get(method)
                assert rule in registered or rule == ANY_CALLER, (
                    template, method)
                checked += 1
        assert set(resource.policies) <= {
            m for m in ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')
            if has_responder(resource, m)}, template
    assert checked >= 60


def test_a_responder_without_a_rule_is_denied(api_app, v2, monkeypatch):
    from freezer_api.api import backups
    monkeypatch.setattr(backups.BackupCollection, 'policies',
                        {'POST': 'backups:create'})
    resp = v2.as_(roles='admin').get('backups')
    helpers.assert_error(resp, 403)
    # a method with no responder still gets Falcon's 405
    helpers.assert_error(v2.as_(roles='admin').put('backups', json={}), 405)


def test_a_rule_nobody_registered_is_denied(v2, monkeypatch):
    from freezer_api.api import backups
    monkeypatch.setattr(backups.BackupCollection, 'policies',
                        {'GET': 'backups:no_such_rule'})
    helpers.assert_error(v2.as_(roles='admin').get('backups'), 403)


# -- point 10: noauth callers are not admins unless they ask -------------

def test_noauth_caller_without_roles_is_member_and_reader(client, v2):
    headers = {'X-User-Id': 'u1', 'X-Project-Id': 'proj-a'}
    created = client.simulate_post('/v2/proj-a/clients', headers=headers,
                                   json={'client_id': 'proj-a_n1',
                                         'hostname': 'n1'})
    assert created.status_code == 201, created.text
    # another project's URL needs admin
    other = client.simulate_get('/v2/proj-b/clients', headers=headers)
    helpers.assert_error(other, 403)
    helpers.assert_error(client.simulate_get(
        '/v2/proj-a/jobs', params={'all_projects': 'true'},
        headers=headers), 403)
    # with no identity headers at all: the [noauth] user, not an admin
    helpers.assert_error(client.simulate_get('/v2/proj-b/clients'), 403)
    asked = client.simulate_get('/v2/proj-b/clients',
                                headers={**headers, 'X-Roles': 'admin'})
    assert asked.status_code == 200, asked.text


# -- point 4: numbers that overflow are a plain 400 ----------------------

DIGITS_400 = '9' * 400
DIGITS_5000 = '9' * 5000
_backup = helpers.backup_body


def _with(body, extra):
    import json
    return json.dumps(body)[:-1] + ', ' + extra + '}'


OVERFLOWS = [
    ('GET', 'backups', '{"time_after": %s}' % DIGITS_400),
    ('GET', 'backups', '{"time_before": "%s"}' % DIGITS_400),
    ('GET', 'backups', '{"time_after": 1e400}'),
    ('GET', 'backups', '{"time_after": %s}' % DIGITS_5000),
    ('GET', 'backups', '{"time_after": "%s"}' % DIGITS_5000),
    ('GET', 'jobs', '{"match": [{"size": %s}]}' % DIGITS_400),
    ('POST', 'backups', _with(_backup(), '"level": %s' % DIGITS_400)),
    ('POST', 'backups', _with(_backup(), '"custom": -%s' % DIGITS_5000)),
    ('POST', 'backups', _with(_backup(), '"custom": 1e400')),
    ('POST', 'actions', '{"freezer_action": {"action": "backup"}, '
                        '"max_retries": %s}' % DIGITS_400),
    ('POST', 'clients', '{"client_id": "proj-a_n1", "hostname": "n1", '
                        '"x": %s}' % DIGITS_5000),
]


@pytest.mark.parametrize('method,kind,body', OVERFLOWS,
                         ids=[f'{m}-{k}-{i}' for i, (m, k, _) in
                              enumerate(OVERFLOWS)])
def test_overflowing_numbers_are_a_plain_400(v2, method, kind, body):
    before = helpers.snapshot(v2)
    resp = v2.call(method, kind, body=body.encode())
    helpers.assert_error(resp, 400)
    description = resp.json['description']
    for internal in ('sys.', 'int_max_str_digits', 'Exceeds the limit',
                     'Traceback', 'OverflowError'):
        assert internal not in description, description
    assert len(description) < 400, description
    assert helpers.snapshot(v2) == before


def test_largest_double_still_reads_as_a_number(v2):
    import sys
    big = int(sys.float_info.max)
    resp = v2.post('backups', body=_with(_backup(), f'"custom": {big}')
                   .encode())
    assert resp.status_code == 201, resp.text


# -- point 1: bounded searches -------------------------------------------

def _search(v2, kind, search):
    import json
    return v2.call('GET', kind, body=json.dumps(search).encode())


@pytest.mark.parametrize('search,limit', [
    ({'match': [{'_all': 'x' * 257}]}, '256'),
    ({'match': [{'description': 'x' * 257}]}, '256'),
    ({'match_not': [{'client_id': 'x' * 257}]}, '256'),
    ({'match': [{'_all': '[{"client_id": "%s"}]' % ('x' * 257)}]}, '256'),
    ({'match': [{'_all': f'needle{i}'} for i in range(6)]}, '5'),
    ({'match': [{f'f{i}': i} for i in range(51)]}, '50'),
])
def test_search_values_and_clauses_are_bounded(v2, search, limit):
    resp = _search(v2, 'jobs', search)
    helpers.assert_error(resp, 400)
    assert limit in resp.json['description'], resp.json


def test_search_at_the_bounds_is_accepted(v2):
    search = {'match': [{'_all': 'x' * 256}] * 5
              + [{'description': 'y' * 256}] * 45}
    resp = _search(v2, 'jobs', search)
    assert resp.status_code == 200, resp.text


def test_a_search_past_the_time_limit_is_a_503(tmp_path, migrated_sqlite,
                                               policy_enforcer):
    """The SQLite leg over HTTP: large documents, a needle found in none,
    and a limit the scan cannot meet; the contract test
    (tests/storage/contract.py QueryTimeoutContract) covers every store."""
    import shutil

    import falcon.testing

    from freezer_api.api import app as app_module
    from freezer_api.api import context
    from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
    from tests.conftest import make_conf
    conf = make_conf(tmp_path, **{'database.query_timeout': 0.000001})
    shutil.copyfile(migrated_sqlite, tmp_path / 'freezer.sqlite')
    driver = SQLAlchemyDriver(conf)
    try:
        values = {f'k{i}': f'{i:06d}-' + 'abcdefgh' * 16
                  for i in range(2000)}
        for n in range(20):
            driver.create('backups', f'b{n}', helpers.PROJECT_A, 'alice',
                          1000 + n, {'backup_metadata': values})
        client = falcon.testing.TestClient(context.NoAuthMiddleware(
            app_module.create_app(conf, driver, enforcer=policy_enforcer),
            conf))
        api = helpers.Api(client, 'v2')
        resp = _search(api, 'backups', {'match': [{'_all': 'zz-nowhere'}]})
        helpers.assert_error(resp, 503)
        assert resp.json['title'] == 'Query Timeout'
        assert 'narrow' in resp.json['description']
        assert resp.headers.get('retry-after')
    finally:
        driver.close()


# -- point 7: lists of large documents are streamed ----------------------

def test_list_pages_are_streamed_one_document_at_a_time(
        api_app, v2, clock):
    import json

    import falcon.testing
    blob = 'x' * (200 * 1024)
    for n in range(3):
        helpers.create(v2, 'backups', helpers.backup_body(
            backup_name=f'b{n}', blob=blob))
        clock.advance(1)

    def chunks_of(query):
        environ = falcon.testing.create_environ(
            path='/v2/proj-a/backups', query_string=query,
            headers=v2.headers)
        answer = {}

        def start_response(status, headers, exc_info=None):
            answer.update(status=status, headers=dict(headers))

        body = api_app(environ, start_response)
        try:
            chunks = list(body)
        finally:
            getattr(body, 'close', lambda: None)()
        assert answer['status'].startswith('200'), answer
        assert answer['headers']['content-type'].startswith(
            'application/json')
        return chunks

    chunks = chunks_of('limit=1000')
    # the page is sent document by document, never built as one string
    assert len(chunks) == 3 + 2
    assert max(len(c) for c in chunks) < 300 * 1024
    page = json.loads(b''.join(chunks))
    metadata = [d['backup_metadata'] for d in page['backups']]
    assert [m['backup_name'] for m in metadata] == ['b0', 'b1', 'b2']
    assert all(m['blob'] == blob for m in metadata)
    # a page is always whole: a short page means the end of the list
    assert len(json.loads(b''.join(chunks_of('limit=2')))['backups']) == 2
    assert json.loads(b''.join(chunks_of('limit=2&offset=3'))) == {
        'backups': []}
    # a small page goes out whole, with its length
    small = v2.get('backups', query='limit=1')
    assert int(small.headers['content-length']) == len(small.content)
    assert len(small.json['backups']) == 1
