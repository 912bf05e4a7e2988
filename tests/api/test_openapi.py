"""The OpenAPI document (``GET /openapi.json``) against the running service.

Every documented operation of v1 and v2 is called on the in-process app
(SQLite) with good and bad requests. Each answer is validated against the
document with openapi-core (status, documented headers, body), good
requests must validate too, and schema-breaking bodies must be refused by
the document as by the service. In the end every operation must have shown
exactly the statuses the document lists: an undocumented status fails at
once, a documented one never seen fails the coverage check. The route table
of ``routes.add_routes`` and the document's paths must cover each other.
"""

import collections
import json
import re
import shutil
import urllib.parse

import falcon
import falcon.testing
import pytest
from openapi_core import Config
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest
from openapi_core.testing import MockResponse
from openapi_core.validation.request.exceptions import \
    ParameterValidationError
from openapi_core.validation.request.exceptions import \
    RequestBodyValidationError
from openapi_spec_validator import validate as validate_spec

from freezer_api import policies
from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api.api import openapi
from freezer_api.api import routes
from freezer_api.api import versions
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
from tests.api import helpers
from tests.conftest import make_conf

HOST = 'http://falconframework.org'
METHODS = ('get', 'head', 'post', 'put', 'patch', 'delete')
MAX_BODY = 1024
PROJECT = helpers.PROJECT_A
PREFIXES = {'v1': ('/v1', '/v1'),
            'v2': ('/v2/{project_id}', f'/v2/{PROJECT}')}
IDENTITY = {'X-Auth-Token': f'alice:{PROJECT}', 'X-Roles': 'member,reader',
            'Accept': 'application/json'}
JSON_HOME = versions.JSON_HOME

_MISSING = object()
# what the document says of a request it refuses (not "no such path")
REQUEST_ERRORS = (ParameterValidationError, RequestBodyValidationError)


def configs():
    return [(True, True), (True, False), (False, True)]


class Conformance:
    """Sends requests and validates each answer against the document.

    ``seen`` maps (path template, method) to the statuses answered.
    """

    def __init__(self, doc, client):
        self.doc = dict(doc, servers=[{'url': HOST}])
        self.client = client
        self.openapi = OpenAPI.from_dict(self.doc, config=Config(
            extra_media_type_deserializers={JSON_HOME: json.loads}))
        self.patterns = [
            (re.compile('^' + re.sub(r'\\\{[^}]+\\\}', '[^/]+',
                                     re.escape(template)) + '$'), template)
            for template in self.doc['paths']]
        self.seen = collections.defaultdict(set)

    def template(self, path):
        path = path.rstrip('/') or '/'
        found = [template for pattern, template in self.patterns
                 if pattern.match(path)]
        assert len(found) == 1, f'{path} matches {found} in the document'
        return found[0]

    def operation(self, template, method):
        return self.doc['paths'][template][method.lower()]

    def statuses(self, template, method):
        return {int(status) for status in
                self.operation(template, method)['responses']}

    def send(self, method, path, json=_MISSING, body=None, query='',
             headers=None, expect=None, request_valid=None, client=None):
        """Send one request, validate the answer, return it.

        ``request_valid`` True/False also asserts that the document
        accepts/refuses the request itself.
        """
        all_headers = dict(IDENTITY if headers is None else headers)
        if json is not _MISSING:
            body = globals()['json'].dumps(json)
            all_headers.setdefault('Content-Type', 'application/json')
        raw = body.encode() if isinstance(body, str) else body
        resp = (client or self.client).simulate_request(
            method, path, headers=all_headers, query_string=query or None,
            body=raw)
        where = f'{method} {path}?{query} -> {resp.status}: {resp.text[:300]}'
        if expect is not None:
            assert resp.status_code == expect, where
        template = self.template(path)
        operation = self.operation(template, method)
        request = MockRequest(
            HOST, method, path.rstrip('/') or '/',
            args=urllib.parse.parse_qsl(query, keep_blank_values=True),
            headers=all_headers, data=raw,
            content_type=all_headers.get('Content-Type', 'application/json'))
        if request_valid is True:
            self.openapi.validate_request(request)
        elif request_valid is False:
            with pytest.raises(REQUEST_ERRORS):
                self.openapi.validate_request(request)
        documented = operation['responses'].get(str(resp.status_code))
        assert documented is not None, f'undocumented status: {where}'
        if '$ref' in documented:
            documented = self.doc['components']['responses'][
                documented['$ref'].rsplit('/', 1)[1]]
        content_type = resp.headers.get('content-type', '')
        if 'content' in documented:
            media = content_type.split(';')[0].strip()
            assert media in documented['content'], f'{media}: {where}'
        else:
            assert resp.content == b'', f'body not documented: {where}'
        self.openapi.validate_response(request, MockResponse(
            resp.content, status_code=resp.status_code,
            headers=dict(resp.headers), content_type=content_type))
        self.seen[(template, method.lower())].add(resp.status_code)
        return resp

    def missing_statuses(self, templates):
        """Documented statuses never answered, per operation."""
        missing = {}
        for template in templates:
            for method in METHODS:
                if method not in self.doc['paths'][template]:
                    continue
                gap = (self.statuses(template, method)
                       - self.seen[(template, method)])
                if gap:
                    missing[f'{method.upper()} {template}'] = sorted(gap)
        return missing


class FaultyStorage:
    """A real driver that can be made to fail like a broken store."""

    def __init__(self, storage):
        self.storage = storage
        self.fault = None

    def _check(self, write):
        if self.fault == 'unavailable':
            raise storage_errors.Unavailable('store down (test)')
        if self.fault == 'conflict' and write:
            raise storage_errors.Conflict('too many races (test)')

    def get(self, *args, **kwargs):
        self._check(False)
        return self.storage.get(*args, **kwargs)

    def list(self, *args, **kwargs):
        self._check(False)
        return self.storage.list(*args, **kwargs)

    def ping(self):
        self._check(False)
        return self.storage.ping()

    def create(self, *args, **kwargs):
        self._check(True)
        return self.storage.create(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check(True)
        return self.storage.delete(*args, **kwargs)

    def atomic(self, change):
        self._check(True)
        return self.storage.atomic(change)

    def __getattr__(self, name):
        return getattr(self.storage, name)


@pytest.fixture
def conf(tmp_path):
    return make_conf(tmp_path, **{'api.max_request_body_size': MAX_BODY})


@pytest.fixture(name='storage')
def sqlite_storage(migrated_sqlite, conf, tmp_path):
    """SQLite, whatever FREEZER_TEST_API_BACKENDS says.

    NOTE: the document describes HTTP; one engine is enough here (the HTTP
    suite proves the engines answer alike).
    """
    shutil.copyfile(migrated_sqlite, tmp_path / 'freezer.sqlite')
    driver = SQLAlchemyDriver(conf)
    yield driver
    driver.close()


@pytest.fixture
def faulty(storage):
    return FaultyStorage(storage)


@pytest.fixture
def apps(conf, faulty, clock, policy_enforcer):
    """The service in a noauth and a Keystone deployment, one store."""
    app = app_module.create_app(conf, faulty, enforcer=policy_enforcer,
                                clock=clock)
    return {
        'noauth': falcon.testing.TestClient(
            context.NoAuthMiddleware(app, conf)),
        # NOTE: the pipeline behind keystonemiddleware, which has set (or
        # not) the X-Identity-Status and identity headers.
        'keystone': falcon.testing.TestClient(
            context.KeystoneContextMiddleware(app, conf)),
    }


@pytest.fixture
def check(apps):
    return Conformance(openapi.document(), apps['noauth'])


# The document itself ----------------------------------------------------

@pytest.mark.parametrize('v1,v2', configs())
def test_document_is_valid_openapi_31(v1, v2):
    doc = openapi.document(v1, v2)
    validate_spec(doc)
    assert doc['openapi'].startswith('3.1.')
    ids = [op['operationId'] for item in doc['paths'].values()
           for method, op in item.items() if method in METHODS]
    assert len(ids) == len(set(ids))


def test_policy_rules_named_by_the_document_exist():
    registered = {rule.name for rule in policies.list_rules()}
    named = {op['x-policy-rule'] for item in openapi.document()[
        'paths'].values() for method, op in item.items()
        if method in METHODS and 'x-policy-rule' in op}
    assert named and named <= registered, named - registered


def test_public_operations_need_no_token_and_others_do():
    doc = openapi.document()
    assert doc['components']['securitySchemes'][openapi.SECURITY_SCHEME] \
        == {**doc['components']['securitySchemes'][
            openapi.SECURITY_SCHEME], 'type': 'apiKey', 'in': 'header',
            'name': 'X-Auth-Token'}
    public = {path for path, item in doc['paths'].items()
              for method, op in item.items()
              if method in METHODS and op.get('security') == []}
    assert public == {'/', '/healthcheck', openapi.PATH}


class RecordingApp:
    """Stands in for falcon.App to read the route table."""

    def __init__(self):
        self.routes = {}

    def add_route(self, template, resource):
        assert template not in self.routes, template
        self.routes[template] = resource


def route_table(tmp_path, v1, v2):
    conf = make_conf(tmp_path, **{'api.enable_v1_api': v1,
                                  'api.enable_v2_api': v2})
    app = RecordingApp()
    routes.add_routes(app, services=None, conf=conf)
    table = {}
    for template, resource in app.routes.items():
        table[template] = {method for method in METHODS
                           if callable(getattr(resource, f'on_{method}',
                                               None))}
    return table


@pytest.mark.parametrize('v1,v2', configs())
def test_route_table_and_document_cover_each_other(tmp_path, v1, v2):
    table = route_table(tmp_path, v1, v2)
    doc = openapi.document(v1, v2)
    documented = {path: {method for method in item if method in METHODS}
                  for path, item in doc['paths'].items()}
    assert sorted(documented) == sorted(table)
    for path, methods in table.items():
        assert documented[path] == methods, path


def fill(template, **ids):
    values = {'project_id': PROJECT, 'backup_id': 'b1', 'client_id': 'c1',
              'job_id': 'j1', 'action_id': 'a1', 'session_id': 's1', **ids}
    return re.sub(r'\{(\w+)\}', lambda m: values[m.group(1)], template)


def test_undocumented_methods_answer_405_with_the_documented_allow(client):
    doc = openapi.document()
    for template, item in doc['paths'].items():
        documented = {m.upper() for m in item if m in METHODS}
        for method in METHODS:
            if method in item:
                continue
            resp = client.simulate_request(method.upper(), fill(template),
                                           headers=IDENTITY)
            where = f'{method.upper()} {template}: {resp.status}'
            assert resp.status_code == 405, where
            allowed = {m.strip() for m in resp.headers['allow'].split(',')}
            assert allowed - {'OPTIONS'} == documented, where
            if method != 'head':
                helpers.assert_error(resp, 405)


@pytest.mark.parametrize('v1,v2', configs())
def test_served_document_needs_no_token(tmp_path, storage, clock, v1, v2):
    conf = make_conf(tmp_path, **{'api.enable_v1_api': v1,
                                  'api.enable_v2_api': v2})
    app = context.KeystoneContextMiddleware(
        app_module.create_app(conf, storage, clock=clock), conf)
    resp = falcon.testing.TestClient(app).simulate_get(
        openapi.PATH, headers={'Host': 'backup.example.org:9090'})
    assert resp.status_code == 200, resp.text
    assert resp.headers['content-type'].startswith('application/json')
    assert resp.json == {**openapi.document(v1, v2), 'servers': [
        {'url': 'http://backup.example.org:9090'}]}
    paths = resp.json['paths']
    assert any(path.startswith('/v1/') for path in paths) == v1
    assert any(path.startswith('/v2/') for path in paths) == v2


def test_document_copies_are_independent():
    first = openapi.document()
    first['paths'].clear()
    assert openapi.document()['paths']


# Public routes ------------------------------------------------------------

def test_public_operations_conform(check, apps, faulty, monkeypatch,
                                   tmp_path):
    keystone = apps['keystone']
    html = {'Accept': 'text/html'}
    for method in ('GET', 'HEAD'):
        check.send(method, '/', headers={}, expect=300, request_valid=True)
        check.send(method, '/', headers=html, expect=406)
        check.send(method, '/healthcheck', headers={}, expect=200,
                   request_valid=True)
        check.send(method, '/healthcheck', headers=html, expect=406)
        faulty.fault = 'unavailable'
        check.send(method, '/healthcheck', headers={}, expect=503)
        faulty.fault = None
        disable = tmp_path / 'healthcheck_disable'
        disable.write_text('')
        monkeypatch.setattr(versions, 'HEALTHCHECK_DISABLE_FILE',
                            str(disable))
        check.send(method, '/healthcheck', headers={}, expect=503)
        monkeypatch.undo()
    resp = check.send('GET', '/healthcheck', headers={}, expect=200)
    assert resp.text == 'OK'
    check.send('GET', openapi.PATH, headers={}, expect=200,
               request_valid=True)
    check.send('GET', openapi.PATH, headers=html, expect=406)
    for home in ('/v1', '/v2'):
        check.send('GET', home, expect=200, request_valid=True)
        check.send('GET', home + '/', expect=200)
        check.send('GET', home, headers={**IDENTITY, **html}, expect=406)
        check.send('GET', home, headers={}, client=keystone, expect=401)
        check.send('GET', home, client=keystone, expect=403, headers={
            'X-Identity-Status': 'Confirmed', 'X-User-Id': 'alice'})
    public = ['/', '/healthcheck', openapi.PATH, '/v1', '/v2']
    assert check.missing_statuses(public) == {}


# Every operation of v1 and v2 ---------------------------------------------

def build_world(check, prefix):
    """One document of each kind, made through the API (and checked)."""
    client_id = f'{PROJECT}_node1'
    check.send('POST', f'{prefix}/clients', expect=201, request_valid=True,
               json={'client_id': client_id, 'hostname': 'node1',
                     'supported_modes': ['fs']})
    ids = {'client_id': client_id}
    for kind, body in (('backups', helpers.backup_body()),
                       ('jobs', helpers.job_body(client_id)),
                       ('actions', helpers.action_body()),
                       ('sessions', helpers.session_body())):
        resp = check.send('POST', f'{prefix}/{kind}', json=body,
                          expect=201, request_valid=True)
        ids[helpers.ID_FIELDS[kind]] = resp.json[helpers.ID_FIELDS[kind]]
    return ids


def good_requests(prefix, template_prefix, w):
    """(template, method, path, body, query) of a valid request for each
    operation, in an order where each one succeeds after those before."""
    P, T = prefix, template_prefix
    job = w['job_id']
    session = w['session_id']
    member = f'/sessions/{session}/jobs/{job}'
    member_t = '/sessions/{session_id}/jobs/{job_id}'
    table = [
        ('/backups', 'get', '/backups',
         {'match': [{'backup_name': 'nightly'}], 'time_after': 0},
         'limit=5&offset=0'),
        ('/backups', 'post', '/backups', helpers.backup_body(), ''),
        ('/backups/{backup_id}', 'get', f'/backups/{w["backup_id"]}',
         _MISSING, ''),
        ('/backups/{backup_id}', 'patch', f'/backups/{w["backup_id"]}',
         {'status': 'available'}, ''),
        ('/clients', 'get', '/clients', {'match': [{'hostname': 'node1'}]},
         ''),
        ('/clients', 'post', '/clients',
         {'client': {'client_id': f'{PROJECT}_node2'}}, ''),
        ('/clients/{client_id}', 'get', f'/clients/{w["client_id"]}',
         _MISSING, ''),
        ('/clients/{client_id}', 'patch', f'/clients/{w["client_id"]}',
         {'description': 'rack 4', 'supported_modes': ['fs', 'mysql']}, ''),
        ('/jobs', 'get', '/jobs',
         {'match': [{'client_id': w['client_id']}],
          'match_not': [{'status': 'completed'}]},
         'limit=10&offset=0&all_projects=false'),
        ('/jobs', 'post', '/jobs', helpers.job_body(
            w['client_id'], action_defaults={'storage': 'local'}), ''),
        ('/jobs/{job_id}', 'get', f'/jobs/{job}', _MISSING, ''),
        ('/jobs/{job_id}', 'patch', f'/jobs/{job}',
         {'description': 'changed', 'job_schedule': {'status': 'scheduled'}},
         ''),
        ('/jobs/{job_id}', 'post', f'/jobs/{job}',
         helpers.job_body(w['client_id']), ''),
        ('/jobs/{job_id}/event', 'post', f'/jobs/{job}/event',
         {'start': None}, ''),
        ('/jobs/{job_id}/schedule', 'get', f'/jobs/{job}/schedule',
         _MISSING, 'count=3'),
        ('/jobs/{job_id}/runs', 'get', f'/jobs/{job}/runs',
         {'match': [{'result': 'success'}]}, 'limit=5'),
        ('/coverage', 'get', '/coverage', _MISSING,
         f'breached=false&job_id={job}'),
        ('/actions', 'get', '/actions', None, ''),
        ('/actions', 'post', '/actions',
         helpers.action_body(action_id='my-action'), ''),
        ('/actions/{action_id}', 'get', f'/actions/{w["action_id"]}',
         _MISSING, ''),
        ('/actions/{action_id}', 'patch', f'/actions/{w["action_id"]}',
         {'max_retries': 7}, ''),
        ('/actions/{action_id}', 'post', f'/actions/{w["action_id"]}',
         helpers.action_body(), ''),
        ('/sessions', 'get', '/sessions', {'match': [{'_all': 'together'}]},
         'limit=1000'),
        ('/sessions', 'post', '/sessions', helpers.session_body(), ''),
        ('/sessions/{session_id}', 'get', f'/sessions/{session}', _MISSING,
         ''),
        ('/sessions/{session_id}', 'patch', f'/sessions/{session}',
         {'hold_off': 60}, ''),
        ('/sessions/{session_id}', 'post', f'/sessions/{session}',
         helpers.session_body(hold_off=60), ''),
        (member_t, 'put', member, _MISSING, ''),
        ('/sessions/{session_id}/action', 'post',
         f'/sessions/{session}/action',
         {'start': {'job_id': job, 'current_tag': 0}}, ''),
        ('/sessions/{session_id}/action', 'post',
         f'/sessions/{session}/action',
         {'end': {'job_id': job, 'current_tag': 1, 'result': 'success'}}, ''),
        (member_t, 'delete', member, _MISSING, ''),
        ('/backups/{backup_id}', 'delete', f'/backups/{w["backup_id"]}',
         _MISSING, ''),
        ('/actions/{action_id}', 'delete', f'/actions/{w["action_id"]}',
         _MISSING, ''),
        ('/sessions/{session_id}', 'delete', f'/sessions/{session}',
         _MISSING, ''),
        ('/jobs/{job_id}', 'delete', f'/jobs/{job}', _MISSING, ''),
        ('/clients/{client_id}', 'delete', f'/clients/{w["client_id"]}',
         _MISSING, ''),
    ]
    return [(T + template, method, P + path, body, query)
            for template, method, path, body, query in table]


def has_body(check, template, method):
    return 'requestBody' in check.operation(template, method)


def reads_if_match(check, template, method):
    return any(param.get('$ref', '').endswith('/If-Match')
               for param in check.operation(template, method).get(
                   'parameters', []))


# Bodies the schemas refuse: the service answers 400, the document refuses
# them too. (template suffix, method) -> body
SCHEMA_VIOLATIONS = {
    ('/backups', 'post'): {'container': 'c', 'backup_name': 'n'},
    ('/backups/{backup_id}', 'patch'): {'status': 'lost'},
    ('/clients', 'post'): {'hostname': 'node9'},
    ('/clients/{client_id}', 'patch'): {'hostname': 'bad host!'},
    ('/jobs', 'post'): {'client_id': 'x', 'job_actions': 'none'},
    ('/jobs/{job_id}', 'patch'): {'job_schedule': {'when': 'now'}},
    ('/jobs/{job_id}', 'post'): {'description': 'no client'},
    ('/jobs/{job_id}/event', 'post'): {'remove': None},
    ('/actions', 'post'): {'max_retries': 1},
    ('/actions/{action_id}', 'patch'): {'max_retries': -1},
    ('/actions/{action_id}', 'post'): {'freezer_action': 'backup'},
    ('/sessions', 'post'): {'description': 'no schedule'},
    ('/sessions/{session_id}', 'patch'): {'hold_off': 'soon'},
    ('/sessions/{session_id}', 'post'): {'schedule': []},
    ('/sessions/{session_id}/action', 'post'): {'start': {'job_id': 'j'}},
}

BAD_LISTS = ['limit=0', 'limit=1001', 'offset=-1', 'limit=ten']


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_every_operation_conforms(version, check, apps, faulty):
    template_prefix, prefix = PREFIXES[version]
    keystone = apps['keystone']
    w = build_world(check, prefix)
    requests = good_requests(prefix, template_prefix, w)
    ops = {(template, method) for template, method, *_ in requests}
    # NOTE: the audit trail's own: tests/api/test_audit.py
    templates = {t for t in check.doc['paths']
                 if t.startswith(template_prefix + '/')
                 and not t.endswith('/audit')}
    assert ops == {(t, m) for t in templates for m in METHODS
                   if m in check.doc['paths'][t]}, 'untested operations'

    def send(method, path, body=_MISSING, **kwargs):
        if body is _MISSING or body is None:
            return check.send(method.upper(), path, **kwargs)
        return check.send(method.upper(), path, json=body, **kwargs)

    # failures before any change: every operation, a good request
    for template, method, path, body, query in requests:
        send(method, path, body, query=query, expect=406,
             headers={**IDENTITY, 'Accept': 'text/html'})
        send(method, path, body, query=query, expect=401, headers={},
             client=keystone)
        send(method, path, body, query=query, expect=403, client=keystone,
             headers={'X-Identity-Status': 'Confirmed',
                      'X-User-Id': 'alice', 'X-Roles': 'member'})
        faulty.fault = 'unavailable'
        send(method, path, body, query=query, expect=503)
        faulty.fault = 'conflict'
        if method != 'get':
            send(method, path, body, query=query, expect=409)
        faulty.fault = None
        if version == 'v2':
            send(method, path.replace(f'/{PROJECT}/', '/bad.project/', 1),
                 body, query=query, expect=400, request_valid=False)
        if has_body(check, template, method):
            check.send(method.upper(), path, body='x' * (MAX_BODY + 1),
                       query=query, expect=413)
            check.send(method.upper(), path, body='{"match": [', query=query,
                       expect=400)
        if reads_if_match(check, template, method):
            send(method, path, body, query=query, expect=412,
                 headers={**IDENTITY, 'If-Match': '"999"'},
                 request_valid=True)
        missing = fill(template.replace(template_prefix, prefix, 1),
                       backup_id='nope', client_id='nope', job_id='nope',
                       action_id='nope', session_id='nope')
        if 404 in check.statuses(template, method):
            send(method, missing, body, query=query, expect=404,
                 request_valid=True)
        suffix = template[len(template_prefix):]
        if (suffix, method) in SCHEMA_VIOLATIONS:
            send(method, path, SCHEMA_VIOLATIONS[(suffix, method)],
                 expect=400, request_valid=False)
        if method == 'get' and 'limit' in str(check.operation(
                template, method).get('parameters')):
            for bad in BAD_LISTS:
                send(method, path, query=bad, expect=400,
                     request_valid=False)
            send(method, path, {'match': 'x'}, expect=400,
                 request_valid=False)

    # rules beyond the schemas
    P = prefix
    send('post', f'{P}/clients', {'client_id': w['client_id']}, expect=409,
         request_valid=True)
    send('post', f'{P}/actions', helpers.action_body(
        action_id=w['action_id']), expect=409, request_valid=True)
    send('post', f'{P}/jobs', helpers.job_body(f'{PROJECT}_ghost'), expect=422,
         request_valid=True)
    send('post', f'{P}/jobs/{w["job_id"]}', helpers.job_body(
        w['client_id'], job_actions=[{'freezer_action': helpers.freezer_action(
            mode='mongo')}]), expect=422, request_valid=True)
    send('patch', f'{P}/jobs/{w["job_id"]}',
         {'client_id': f'{PROJECT}_ghost'}, expect=422, request_valid=True)
    send('get', f'{P}/jobs/{w["job_id"]}/schedule', query='count=0',
         expect=400, request_valid=False)
    unreadable = send('post', f'{P}/jobs', helpers.job_body(
        w['client_id'], job_schedule={'schedule_hour': '25'}),
        expect=201).json['job_id']
    send('get', f'{P}/jobs/{unreadable}/schedule', expect=422,
         request_valid=True)
    resp = send('post', f'{P}/sessions/{w["session_id"]}/action',
                {'stop': {'job_id': w['job_id'], 'current_tag': 0}},
                expect=405, request_valid=False)
    assert resp.headers['allow']
    send('post', f'{P}/sessions/{w["session_id"]}/action',
         {'start': {'job_id': 'not-a-member', 'current_tag': 0}},
         expect=400, request_valid=True)
    send('get', f'{P}/jobs', query='all_projects=true', expect=403,
         request_valid=True)
    send('get', f'{P}/coverage', query='breached=maybe', expect=400,
         request_valid=False)
    send('get', f'{P}/coverage', query='all_projects=true', expect=403,
         request_valid=True)
    resp = send('get', f'{P}/jobs', query='all_projects=true', expect=200,
                headers={**IDENTITY, 'X-Roles': 'admin'})
    assert resp.json['jobs']

    # success: each operation once, in an order where each one works
    for template, method, path, body, query in requests:
        expected = min(s for s in check.statuses(template, method)
                       if s < 300)
        resp = send(method, path, body, query=query, expect=expected,
                    request_valid=True)
        if method == 'get' and template.endswith('}'):
            assert resp.headers['etag'] == f'"{resp.json["_version"]}"'
    assert check.missing_statuses(templates) == {}
