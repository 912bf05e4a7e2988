"""The policy table, checked against the running service (issue 7, D16).

For every route of v1 and v2 and every kind of caller, the status the
service must answer, written out as a table (``expected``) rather than
derived from the policy code, and compared with what a real freezer-api
under uwsgi in keystone mode answers to real Keystone tokens
(``keystone_api``). The callers, all with fresh accounts:

``none``
    a user of the owner's project with a role the policy does not know
``reader``, ``member``
    the secure-RBAC roles in the owner's project (for v1, which is
    user-scoped, ``member`` is the owner of the documents itself)
``admin``
    the cloud admin (admin of project ``admin``), naming the owner's
    project in v2 URLs
``other``
    a member of another project, naming the owner's project in v2 URLs

Each (caller, version) gets its own documents, so that writes and deletes
of one row cannot change the answer of another.
"""

import uuid

import pytest

from tests.api import helpers

ROLES = ('none', 'reader', 'member', 'admin', 'other')

# (method, path below the version prefix, success status). The order
# matters: deletes come last.
ROUTES = [
    ('GET', '/backups', 200), ('POST', '/backups', 201),
    ('GET', '/backups/{backup}', 200), ('PATCH', '/backups/{backup}', 200),
    ('GET', '/clients', 200), ('POST', '/clients', 201),
    ('GET', '/clients/{client}', 200), ('PATCH', '/clients/{client}', 200),
    ('GET', '/jobs', 200), ('POST', '/jobs', 201),
    ('GET', '/jobs/{job}', 200), ('PATCH', '/jobs/{job}', 200),
    ('POST', '/jobs/{job}', 201), ('POST', '/jobs/{job}/event', 202),
    ('GET', '/jobs/{job}/schedule', 200), ('GET', '/jobs/{job}/runs', 200),
    ('GET', '/coverage', 200),
    ('GET', '/actions', 200), ('POST', '/actions', 201),
    ('GET', '/actions/{action}', 200), ('PATCH', '/actions/{action}', 200),
    ('POST', '/actions/{action}', 201),
    ('GET', '/sessions', 200), ('POST', '/sessions', 201),
    ('GET', '/sessions/{session}', 200),
    ('PATCH', '/sessions/{session}', 200),
    ('POST', '/sessions/{session}', 201),
    ('PUT', '/sessions/{session}/jobs/{job2}', 204),
    ('POST', '/sessions/{session}/action', 202),
    ('DELETE', '/sessions/{session}/jobs/{job2}', 204),
    ('DELETE', '/backups/{backup}', 204),
    ('DELETE', '/jobs/{job}', 204),
    ('DELETE', '/actions/{action}', 204),
    ('DELETE', '/sessions/{session}', 204),
    ('DELETE', '/clients/{client}', 204),
]


def is_read(method):
    return method == 'GET'


def is_item(path):
    return '{' in path


def expected(role, version, method, path, success):
    """The status the service must answer: the policy table."""
    if role == 'none':
        return 403                 # no known role: nothing at all
    if version == 'v2':
        if role == 'other':
            return 403             # the URL names a project not its own
        if role == 'reader':
            return success if is_read(method) else 403
        return success             # member and admin
    # v1: each user sees the documents it owns in its token's project
    if role == 'reader':
        if not is_read(method):
            return 403
        return 404 if is_item(path) else success
    if role == 'member':
        return success             # the owner itself
    # admin and other: their own (empty) scope
    if method == 'POST' and path.startswith('/jobs') and not path.endswith(
            '/event'):
        return 422                 # the owner's client is not theirs
    if method == 'POST' and path.count('/') == 2 and is_item(path):
        return 409                 # replace: the id is taken (spec D3)
    if is_item(path):
        return 404
    return success


def table_rows():
    """The table as text rows (for doc/reliability.rst)."""
    rows = []
    for method, path, success in ROUTES:
        for version in ('v1', 'v2'):
            rows.append((version, method, path, *[
                expected(role, version, method, path, success)
                for role in ROLES]))
    return rows


@pytest.fixture(scope='module')
def callers(keystone):
    project = f'pt-{uuid.uuid4().hex[:10]}'
    return {
        'owner': keystone.new_account(project, 'member'),
        'none': keystone.new_account(project, 'policy-table-nobody'),
        'reader': keystone.new_account(project, 'reader'),
        'member': keystone.new_account(project, 'member'),
        'admin': keystone.admin,
        'other': keystone.new_account(f'pt-{uuid.uuid4().hex[:10]}',
                                      'member'),
    }


def _world(api, owner, version):
    """Documents of ``owner``: one of each kind, a job in a session."""
    base = (f'/v2/{owner.project_id}' if version == 'v2' else '/v1')

    def post(path, body):
        resp = api.request('POST', base + path, account=owner, json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    client = f'{owner.project_id}_{uuid.uuid4().hex[:8]}'
    post('/clients/', {'client_id': client, 'hostname': 'h'})
    world = {
        'client': client,
        'backup': post('/backups/', helpers.backup_body())['backup_id'],
        'job': post('/jobs/', helpers.job_body(client))['job_id'],
        'job2': post('/jobs/', helpers.job_body(client))['job_id'],
        'action': post('/actions/', helpers.action_body())['action_id'],
        'session': post('/sessions/',
                        helpers.session_body())['session_id'],
    }
    resp = api.request('PUT', base + '/sessions/{session}/jobs/{job}'.format(
        **world), account=owner)
    assert resp.status_code == 204, resp.text
    return base, world


def _body(method, path, world, owner):
    if method not in ('POST', 'PATCH'):
        return None
    if path.endswith('/event'):
        return {'stop': None}
    if path.endswith('/action'):
        return {'start': {'job_id': world['job'], 'current_tag': 0}}
    kind = path.split('/')[1]
    if method == 'PATCH':
        return {'status': 'error'} if kind == 'backups' else {
            'description': 'patched'}
    if kind == 'clients':
        return {'client_id': f'{owner.project_id}_{uuid.uuid4().hex[:8]}',
                'hostname': 'h2'}
    return {'backups': helpers.backup_body, 'actions': helpers.action_body,
            'sessions': helpers.session_body,
            'jobs': lambda: helpers.job_body(world['client'])}[kind]()


@pytest.mark.parametrize('version', ['v1', 'v2'])
@pytest.mark.parametrize('role', ROLES)
def test_policy_table(keystone_api, callers, role, version, figures):
    owner = callers['owner']
    caller = callers['owner'] if (version == 'v1'
                                  and role == 'member') else callers[role]
    base, world = _world(keystone_api, owner, version)
    mismatches = []
    for method, path, success in ROUTES:
        want = expected(role, version, method, path, success)
        resp = keystone_api.request(
            method, base + path.format(**world), account=caller,
            json=_body(method, path, world, owner))
        figures.add('requests')
        assert resp.status_code < 500, resp.text
        if resp.status_code != want:
            mismatches.append((method, path, want, resp.status_code,
                               resp.text[:200]))
        elif resp.status_code >= 400:
            body = resp.json()
            assert body['title'] and body['description'], body
    assert not mismatches, '\n'.join(map(repr, mismatches))


def test_policy_table_covers_every_route():
    from tests.reliability import test_hostile_inputs
    routes = {(method, path.replace('{backup_id}', '{backup}')
               .replace('{client_id}', '{client}')
               .replace('{action_id}', '{action}')
               .replace('{session_id}', '{session}')
               .replace('{job_id}', '{job}'))
              for path, method, _ in test_hostile_inputs.ROUTES}
    covered = {(method, path.replace('{job2}', '{job}'))
               for method, path, _ in ROUTES}
    assert covered == routes
