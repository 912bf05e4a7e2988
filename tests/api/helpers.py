"""Helpers shared by the HTTP tests: URLs, identities, bodies, assertions.

``Api`` wraps a ``falcon.testing.TestClient`` for one API version and one
caller identity, so one test body runs against ``/v1/...`` and
``/v2/{project_id}/...`` alike.
"""

import copy
import json as jsonlib
import re

HEX_ID = re.compile(r'^[0-9a-f]{32}$')

PROJECT_A = 'proj-a'
PROJECT_B = 'proj-b'

KINDS = ('backups', 'clients', 'jobs', 'actions', 'sessions')
ID_FIELDS = {'backups': 'backup_id', 'clients': 'client_id',
             'jobs': 'job_id', 'actions': 'action_id',
             'sessions': 'session_id'}

_MISSING = object()


class Api:
    """One caller talking to one API version.

    :param version: ``'v1'`` or ``'v2'``.
    :param url_project: the project named in v2 URLs (default: the
        caller's own project).
    """

    def __init__(self, client, version, user='alice', project=PROJECT_A,
                 roles='member,reader', url_project=None):
        assert version in ('v1', 'v2')
        self.client = client
        self.version = version
        self.user = user
        self.project = project
        self.roles = roles
        self.url_project = url_project or project

    def __repr__(self):
        return (f'Api({self.version}, user={self.user}, '
                f'project={self.project}, roles={self.roles})')

    def as_(self, user=None, project=None, roles=None, url_project=None,
            version=None):
        """The same API as someone else (or another version)."""
        project = project or self.project
        return Api(self.client, version or self.version,
                   user=user or self.user, project=project,
                   roles=self.roles if roles is None else roles,
                   url_project=url_project or project)

    @property
    def headers(self):
        headers = {'X-User-Id': self.user, 'X-Project-Id': self.project,
                   'Accept': 'application/json'}
        if self.roles is not None:
            headers['X-Roles'] = self.roles
        return headers

    def path(self, *parts, slash=False):
        base = '/v1' if self.version == 'v1' else f'/v2/{self.url_project}'
        path = '/'.join([base] + [str(p) for p in parts])
        return path + '/' if slash else path

    def call(self, method, *parts, json=_MISSING, body=None, headers=None,
             query=None, slash=False):
        """Send a request; ``json`` is encoded, ``body`` sent raw."""
        all_headers = dict(self.headers)
        kwargs = {}
        if json is not _MISSING:
            body = jsonlib.dumps(json)
            all_headers['Content-Type'] = 'application/json'
        if body is not None:
            kwargs['body'] = body
        if headers:
            all_headers.update(headers)
        if query is not None:
            kwargs['query_string'] = query
        return self.client.simulate_request(
            method, self.path(*parts, slash=slash), headers=all_headers,
            **kwargs)

    def get(self, *parts, **kw):
        return self.call('GET', *parts, **kw)

    def post(self, *parts, **kw):
        return self.call('POST', *parts, **kw)

    def patch(self, *parts, **kw):
        return self.call('PATCH', *parts, **kw)

    def put(self, *parts, **kw):
        return self.call('PUT', *parts, **kw)

    def delete(self, *parts, **kw):
        return self.call('DELETE', *parts, **kw)

    # Convenience: read documents back.

    def list(self, kind, search=None, query='limit=1000'):
        kw = {} if search is None else {'json': search}
        resp = self.get(kind, query=query, **kw)
        assert resp.status_code == 200, (resp.status, resp.text)
        assert list(resp.json) == [kind], resp.json
        return resp.json[kind]

    def ids(self, kind, search=None, query='limit=1000'):
        return [doc_id(kind, doc) for doc in self.list(kind, search, query)]

    def doc(self, kind, doc_id):
        resp = self.get(kind, doc_id)
        assert resp.status_code == 200, (resp.status, resp.text)
        return resp.json


def doc_id(kind, doc):
    if kind == 'clients':
        return doc['client']['client_id']
    return doc[ID_FIELDS[kind]]


def assert_error(resp, status):
    """An error answer: exact status, JSON body with title/description."""
    assert resp.status_code == status, (resp.status, resp.text)
    assert resp.headers.get('content-type', '').startswith(
        'application/json'), resp.headers
    body = resp.json
    assert isinstance(body, dict), body
    assert isinstance(body.get('title'), str) and body['title'], body
    assert isinstance(body.get('description'), str), body
    assert body['description'], body


def assert_client_error(resp):
    """Any 4xx with a proper error body; never a 5xx."""
    assert 400 <= resp.status_code < 500, (resp.status, resp.text)
    assert_error(resp, resp.status_code)


# Bodies ---------------------------------------------------------------

def client_id_for(project, host):
    return f'{project}_{host}'


def backup_body(**extra):
    body = {
        'container': 'freezer_container',
        'hostname': 'node1.example.org',
        'backup_name': 'nightly',
        'curr_backup_level': 0,
        'fs_real_path': '/var/lib/mysql',
        'vol_snap_path': '/var/lib/mysql',
        'client_os': 'linux',
        'client_version': '18.0.0',
        'time_stamp': 1700000000,
        'action': 'backup',
        'always_level': '',
        'backup_media': 'fs',
        'max_level': 5,
        'mode': 'fs',
        'path_to_backup': '/var/lib/mysql',
        'storage': 'swift',
        'compression': 'gzip',
        'consistency_checksum': '',
        'dry_run': False,
        'job_id': 'abc123',
    }
    body.update(extra)
    return body


def freezer_action(**extra):
    action = {'action': 'backup', 'mode': 'fs', 'backup_name': 'nightly',
              'path_to_backup': '/etc', 'container': 'freezer_etc',
              'storage': 'swift'}
    action.update(extra)
    return action


def job_body(client_id, actions=None, **extra):
    body = {
        'client_id': client_id,
        'description': 'nightly etc backup',
        'job_schedule': {'schedule_interval': '1 days',
                         'schedule_start_date': '2024-01-01T02:00:00'},
        'job_actions': actions if actions is not None else [
            {'freezer_action': freezer_action(), 'max_retries': 3,
             'max_retries_interval': 10, 'mandatory': True}],
    }
    body.update(extra)
    return body


def action_body(**extra):
    body = {'freezer_action': freezer_action(), 'max_retries': 2,
            'max_retries_interval': 5, 'mandatory': False}
    body.update(extra)
    return body


def session_body(**extra):
    body = {'description': 'db and app together',
            'schedule': {'schedule_interval': '1 days',
                         'schedule_start_date': '2024-01-01T03:00:00'}}
    body.update(extra)
    return body


# Creators -------------------------------------------------------------

def register_client(api, host='node1', **extra):
    client_id = extra.pop('client_id', client_id_for(api.project, host))
    resp = api.post('clients', json={'client_id': client_id,
                                     'hostname': f'{host}.example.org',
                                     **extra})
    assert resp.status_code == 201, (resp.status, resp.text)
    assert resp.json == {'client_id': client_id}
    return client_id


def create(api, kind, body):
    resp = api.post(kind, json=body)
    assert resp.status_code == 201, (resp.status, resp.text)
    field = ID_FIELDS[kind]
    assert list(resp.json) == [field], resp.json
    return resp.json[field]


def make_backup(api, **extra):
    return create(api, 'backups', backup_body(**extra))


def make_job(api, client_id=None, host='node1', **extra):
    if client_id is None:
        client_id = client_id_for(api.project, host)
        resp = api.get('clients', client_id)
        if resp.status_code == 404:
            register_client(api, host)
    return create(api, 'jobs', job_body(client_id, **extra))


def make_action(api, **extra):
    return create(api, 'actions', action_body(**extra))


def make_session(api, **extra):
    return create(api, 'sessions', session_body(**extra))


def snapshot(api):
    """Everything the caller can see, with versions: detects any change."""
    state = {}
    for kind in KINDS:
        docs = api.list(kind)
        state[kind] = {}
        for doc in docs:
            ident = doc_id(kind, doc)
            state[kind][ident] = api.doc(kind, ident)
    return state


def strip_version(doc):
    doc = copy.deepcopy(doc)
    doc.pop('_version', None)
    return doc


def services_of(app):
    """The core services behind the routes of ``app`` (every resource
    holds the same ones), through the NoAuth middleware if it wraps it."""
    app = getattr(app, 'app', app)
    for root in app._router._roots:
        resource = root.resource
        if resource is not None and hasattr(resource, 'services'):
            return resource.services
    raise AssertionError('no resource holds the services')
