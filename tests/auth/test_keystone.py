"""freezer-api behind a real Keystone: tokens, projects, roles (spec D2,
D15, D16).

Everything runs against ``keystone_api``: a freezer-api process under
uwsgi with ``auth_strategy = keystone`` and the shipped paste pipeline,
validating tokens of a real Keystone (tests/fixtures/keystone.py). Each
test makes its own users, so tests do not see each other's documents.
"""

import uuid

import pytest
import requests

KINDS = ('clients', 'jobs', 'actions', 'sessions', 'backups')


def new_id():
    return uuid.uuid4().hex


def client_body(client_id):
    return {'client_id': client_id, 'hostname': 'node1'}


def job_body(client_id):
    return {'client_id': client_id, 'description': 'nightly',
            'job_schedule': {'schedule_interval': '1 days'},
            'job_actions': [{'freezer_action': {
                'action': 'backup', 'mode': 'fs', 'backup_name': 'etc',
                'path_to_backup': '/etc', 'container': 'c1',
                'storage': 'local'}}]}


BODIES = {
    'actions': lambda: {'freezer_action': {
        'action': 'backup', 'backup_name': 'b', 'path_to_backup': '/tmp',
        'container': 'c', 'mode': 'fs'}, 'max_retries': 3},
    'sessions': lambda: {'description': 'consistent', 'hold_off': 30,
                         'schedule': {'schedule_interval': '1 days'}},
    'backups': lambda: {'container': 'c1', 'backup_name': 'etc',
                        'hostname': 'node1', 'level': 0,
                        'time_stamp': 1700000000, 'mode': 'fs',
                        'path_to_backup': '/etc', 'fs_real_path': '/etc',
                        'vol_snap_path': '/etc', 'curr_backup_level': 0,
                        'max_level': 5, 'always_level': None,
                        'restart_always_level': None},
}

# a valid PATCH body of each kind (backups may only change status)
PATCHES = {'clients': {'description': 'x'}, 'jobs': {'description': 'x'},
           'actions': {'max_retries': 9}, 'sessions': {'description': 'x'},
           'backups': {'status': 'error'}}

ID_FIELD = {'clients': 'client_id', 'jobs': 'job_id',
            'actions': 'action_id', 'sessions': 'session_id',
            'backups': 'backup_id'}


class Project:
    """One user's view of the API: ``v1`` or ``v2`` URLs, its token."""

    def __init__(self, api, account):
        self.api = api
        self.account = account

    def v2(self, path='', project_id=None):
        return f'/v2/{project_id or self.account.project_id}{path}'

    def call(self, method, path, **kwargs):
        return self.api.request(method, path, account=self.account,
                                **kwargs)

    def create_all(self):
        """One document of every kind; returns {kind: id}."""
        ids = {}
        client_id = f'{self.account.project_id}_{new_id()[:8]}'
        resp = self.call('POST', self.v2('/clients/'),
                         json=client_body(client_id))
        assert resp.status_code == 201, resp.text
        ids['clients'] = client_id
        resp = self.call('POST', self.v2('/jobs/'), json=job_body(client_id))
        assert resp.status_code == 201, resp.text
        ids['jobs'] = resp.json()['job_id']
        for kind in ('actions', 'sessions', 'backups'):
            resp = self.call('POST', self.v2(f'/{kind}/'),
                             json=BODIES[kind]())
            assert resp.status_code == 201, resp.text
            ids[kind] = resp.json()[ID_FIELD[kind]]
        return ids


@pytest.fixture
def accounts(keystone):
    """Fresh users: two members of one new project, a reader of it, and a
    member of another new project."""
    first, second = f'p-{new_id()[:10]}', f'p-{new_id()[:10]}'
    return {
        'member': keystone.new_account(first, 'member'),
        'colleague': keystone.new_account(first, 'member'),
        'reader': keystone.new_account(first, 'reader'),
        'stranger': keystone.new_account(second, 'member'),
    }


def test_versions_and_health_need_no_token(keystone_api):
    resp = keystone_api.request('GET', '/')
    assert resp.status_code == 300
    assert len(resp.json()['versions']) == 2
    assert keystone_api.request('GET', '/healthcheck').status_code == 200
    # a bad token does not hide the versions either
    assert keystone_api.request('GET', '/',
                                token='garbage').status_code == 300


@pytest.mark.parametrize('method,path', [
    ('GET', '/v1/jobs'), ('POST', '/v1/clients'), ('GET', '/v2/{p}/jobs/'),
    ('POST', '/v2/{p}/backups'), ('DELETE', '/v2/{p}/sessions/abc'),
    ('PATCH', '/v2/{p}/jobs/abc'), ('GET', '/v2/{p}/clients/x'),
])
@pytest.mark.parametrize('token', [None, 'garbage',
                                   'gAAAAABnotavalidfernettoken'])
def test_without_a_valid_token_every_route_is_401(keystone_api, method,
                                                  path, token):
    project_id = keystone_api.keystone.alice.project_id
    resp = keystone_api.request(method, path.format(p=project_id),
                                token=token, json={'a': 1})
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body['title'] and body['description']
    assert 'Keystone uri=' in resp.headers['WWW-Authenticate']
    assert resp.headers['x-openstack-request-id'].startswith('req-')


def test_a_revoked_token_is_401(keystone_api, keystone, accounts):
    member = accounts['member']
    token = keystone.issue(member)
    requests.delete(f'{keystone.auth_url}/auth/tokens', timeout=30,
                    headers={'X-Auth-Token': keystone.token(keystone.admin),
                             'X-Subject-Token': token}).raise_for_status()
    resp = keystone_api.request('GET', f'/v2/{member.project_id}/jobs',
                                token=token)
    assert resp.status_code == 401


def test_a_valid_token_reaches_v1_and_v2(keystone_api, accounts):
    me = Project(keystone_api, accounts['member'])
    for path in ('/v1/jobs', me.v2('/jobs'), '/v1/backups/',
                 me.v2('/sessions/')):
        resp = me.call('GET', path)
        assert resp.status_code == 200, (path, resp.text)
        assert resp.headers['x-openstack-request-id'].startswith('req-')


def test_another_projects_url_is_403(keystone_api, accounts):
    me = Project(keystone_api, accounts['member'])
    other = accounts['stranger'].project_id
    for kind in KINDS:
        resp = me.call('GET', me.v2(f'/{kind}/', project_id=other))
        assert resp.status_code == 403, resp.text
        assert resp.json()['description']
        resp = me.call('POST', me.v2(f'/{kind}/', project_id=other),
                       json={})
        assert resp.status_code == 403


def test_admin_may_use_another_projects_url(keystone_api, keystone,
                                            accounts):
    member = Project(keystone_api, accounts['member'])
    ids = member.create_all()
    admin = Project(keystone_api, keystone.admin)
    project_id = accounts['member'].project_id
    for kind in KINDS:
        resp = admin.call('GET', admin.v2(f'/{kind}/{ids[kind]}',
                                          project_id=project_id))
        assert resp.status_code == 200, (kind, resp.text)


def test_projects_are_isolated_on_every_resource(keystone_api, accounts):
    owner = Project(keystone_api, accounts['member'])
    stranger = Project(keystone_api, accounts['stranger'])
    ids = owner.create_all()
    for kind in KINDS:
        item = f'/{kind}/{ids[kind]}'
        listed = stranger.call('GET', stranger.v2(f'/{kind}/')).json()[kind]
        assert listed == [], kind
        assert stranger.call('GET', f'/v1/{kind}').json()[kind] == []
        for path in (stranger.v2(item), '/v1' + item):
            assert stranger.call('GET', path).status_code == 404, kind
            assert stranger.call('PATCH', path, json=PATCHES[kind]
                                 ).status_code == 404, kind
            assert stranger.call('DELETE', path).status_code == 404, kind
        # and the owner still has it, unchanged
        resp = owner.call('GET', owner.v2(item))
        assert resp.status_code == 200
        assert resp.json()['_version'] == 1, kind


def test_a_project_shares_through_v2_and_a_user_owns_through_v1(
        keystone_api, accounts):
    owner = Project(keystone_api, accounts['member'])
    colleague = Project(keystone_api, accounts['colleague'])
    ids = owner.create_all()
    for kind in KINDS:
        assert colleague.call('GET', colleague.v2(
            f'/{kind}/{ids[kind]}')).status_code == 200, kind
        assert colleague.call('GET', f'/v1/{kind}/{ids[kind]}'
                              ).status_code == 404, kind
        assert owner.call('GET', f'/v1/{kind}/{ids[kind]}'
                          ).status_code == 200, kind


def test_a_reader_reads_and_cannot_write(keystone_api, accounts):
    owner = Project(keystone_api, accounts['member'])
    reader = Project(keystone_api, accounts['reader'])
    ids = owner.create_all()
    for kind in KINDS:
        item = reader.v2(f'/{kind}/{ids[kind]}')
        assert reader.call('GET', reader.v2(f'/{kind}/')).status_code == 200
        assert reader.call('GET', item).status_code == 200
        create = (client_body('r_1') if kind == 'clients' else
                  job_body(ids['clients']) if kind == 'jobs' else
                  BODIES[kind]())
        for method, path, body in (('POST', reader.v2(f'/{kind}/'), create),
                                   ('PATCH', item, PATCHES[kind]),
                                   ('DELETE', item, None)):
            resp = reader.call(method, path, json=body)
            assert resp.status_code == 403, (kind, method, resp.text)
    for method, path, body in (
            ('POST', f'/jobs/{ids["jobs"]}/event', {'start': None}),
            ('POST', f'/jobs/{ids["jobs"]}', job_body(ids['clients'])),
            ('POST', f'/sessions/{ids["sessions"]}/action',
             {'start': {'job_id': ids['jobs'], 'current_tag': 0}}),
            ('PUT', f'/sessions/{ids["sessions"]}/jobs/{ids["jobs"]}', None),
            ('DELETE', f'/sessions/{ids["sessions"]}/jobs/{ids["jobs"]}',
             None)):
        resp = reader.call(method, reader.v2(path), json=body)
        assert resp.status_code == 403, (method, path, resp.text)
    # nothing changed: the owner's documents are all still there as made
    for kind in KINDS:
        resp = owner.call('GET', owner.v2(f'/{kind}/{ids[kind]}'))
        assert resp.status_code == 200
        assert resp.json()['_version'] == 1, kind


def test_a_member_writes(keystone_api, accounts):
    owner = Project(keystone_api, accounts['member'])
    colleague = Project(keystone_api, accounts['colleague'])
    ids = owner.create_all()
    resp = colleague.call('PATCH', colleague.v2(f'/jobs/{ids["jobs"]}'),
                          json={'description': 'changed'})
    assert resp.status_code == 200, resp.text
    resp = colleague.call('POST', colleague.v2(f'/jobs/{ids["jobs"]}/event'),
                          json={'start': None})
    assert resp.status_code == 202
    assert colleague.call('DELETE', colleague.v2(
        f'/backups/{ids["backups"]}')).status_code == 204


def test_all_projects_is_for_admins_only(keystone_api, keystone, accounts):
    first = Project(keystone_api, accounts['member'])
    second = Project(keystone_api, accounts['stranger'])
    job_ids = {first.create_all()['jobs'], second.create_all()['jobs']}
    resp = first.call('GET', first.v2('/jobs/?all_projects=true'))
    assert resp.status_code == 403
    admin = Project(keystone_api, keystone.admin)
    found, offset = set(), 0
    while True:
        resp = admin.call('GET', admin.v2(
            f'/jobs/?all_projects=true&limit=1000&offset={offset}'))
        assert resp.status_code == 200, resp.text
        page = resp.json()['jobs']
        found |= {job['job_id'] for job in page}
        if len(page) < 1000:
            break
        offset += len(page)
    assert job_ids <= found
    # without all_projects an admin sees only the URL's project
    resp = admin.call('GET', admin.v2('/jobs/?limit=1000'))
    assert not job_ids & {job['job_id'] for job in resp.json()['jobs']}


def test_identity_headers_never_override_the_token(keystone_api, keystone,
                                                   accounts):
    member = accounts['member']
    stranger = accounts['stranger']
    me = Project(keystone_api, member)
    spoofed = {'X-User-Id': stranger.user_id, 'X-User-Name': 'mallory',
               'X-Project-Id': stranger.project_id,
               'X-Tenant-Id': stranger.project_id, 'X-Roles': 'admin',
               'X-Identity-Status': 'Confirmed', 'X-Is-Admin-Project': 'True',
               'X-Service-Roles': 'admin'}
    resp = me.call('GET', me.v2('/jobs/', project_id=stranger.project_id),
                   headers=dict(spoofed))
    assert resp.status_code == 403
    resp = me.call('GET', me.v2('/jobs/?all_projects=true'),
                   headers=dict(spoofed))
    assert resp.status_code == 403
    resp = me.call('POST', me.v2('/backups/'), json=BODIES['backups'](),
                   headers=dict(spoofed))
    assert resp.status_code == 201
    backup = me.call('GET', me.v2(f'/backups/{resp.json()["backup_id"]}'))
    assert backup.json()['user_id'] == member.user_id
    assert backup.json()['project_id'] == member.project_id
    # the name recorded is the token's (v1 shows it; v2 has no user_name)
    assert 'user_name' not in backup.json()
    backup = me.call('GET', f'/v1/backups/{resp.json()["backup_id"]}')
    assert backup.json()['user_name'] == member.username
    # and without a token the same headers are worth nothing
    resp = keystone_api.request('GET', f'/v2/{stranger.project_id}/jobs',
                                headers=dict(spoofed))
    assert resp.status_code == 401
