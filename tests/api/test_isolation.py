"""Ownership, tenancy and policy (spec D2, D3, D16, §10.4 item 9)."""

import pytest

from tests.api import helpers
from tests.api.helpers import PROJECT_A
from tests.api.helpers import PROJECT_B
from tests.api.helpers import assert_error


def populate(api):
    """One document of every kind; returns {kind: id} and the job body."""
    client_id = helpers.register_client(api, 'node1')
    job_id = helpers.make_job(api, client_id)
    session_id = helpers.make_session(api)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    return {
        'backups': helpers.make_backup(api),
        'clients': client_id,
        'jobs': job_id,
        'actions': helpers.make_action(api),
        'sessions': session_id,
    }


def write_attempts(ids, client_id):
    """(method, parts, body) of every write on someone's documents."""
    job_body = helpers.job_body(client_id, description='hijacked')
    return [
        ('PATCH', ('backups', ids['backups']), {'status': 'error'}),
        ('DELETE', ('backups', ids['backups']), None),
        ('PATCH', ('clients', ids['clients']), {'description': 'hijacked'}),
        ('DELETE', ('clients', ids['clients']), None),
        ('PATCH', ('jobs', ids['jobs']), {'description': 'hijacked'}),
        ('POST', ('jobs', ids['jobs']), job_body),
        ('DELETE', ('jobs', ids['jobs']), None),
        ('POST', ('jobs', ids['jobs'], 'event'), {'abort': None}),
        ('PATCH', ('actions', ids['actions']), {'max_retries': 99}),
        ('POST', ('actions', ids['actions']),
         helpers.action_body(max_retries=99)),
        ('DELETE', ('actions', ids['actions']), None),
        ('PATCH', ('sessions', ids['sessions']), {'description': 'x'}),
        ('POST', ('sessions', ids['sessions']),
         helpers.session_body(description='hijacked')),
        ('DELETE', ('sessions', ids['sessions']), None),
        ('POST', ('sessions', ids['sessions'], 'action'),
         {'start': {'job_id': ids['jobs'], 'current_tag': 0}}),
        ('PUT', ('sessions', ids['sessions'], 'jobs', ids['jobs']), None),
        ('DELETE', ('sessions', ids['sessions'], 'jobs', ids['jobs']), None),
    ]


def check_writes_refused(api, ids, client_id):
    """Every write on another owner's ids: 404, except that replacing
    (POST /<kind>/{id}) an id taken outside the caller's scope is 409
    (D3: "409 ... an id already taken on create/replace")."""
    wrong = []
    for method, parts, body in write_attempts(ids, client_id):
        resp = _send(api, method, parts, body)
        replace = method == 'POST' and len(parts) == 2
        expected = 409 if replace else 404
        try:
            assert_error(resp, expected)
        except AssertionError:
            wrong.append((method, '/'.join(parts), expected, resp.status,
                          resp.text[:200]))
    assert wrong == []


def _send(api, method, parts, body):
    kw = {} if body is None else {'json': body}
    return api.call(method, *parts, **kw)


# v1: user-scoped -----------------------------------------------------------

def test_v1_other_user_sees_nothing(v1):
    ids = populate(v1)
    bob = v1.as_(user='bob')
    for kind in helpers.KINDS:
        assert bob.list(kind) == []
        assert_error(bob.get(kind, ids[kind]), 404)


def test_v1_other_user_cannot_write(v1):
    ids = populate(v1)
    before = helpers.snapshot(v1)
    bob = v1.as_(user='bob')
    helpers.register_client(bob, 'node1', client_id='bob-node')
    check_writes_refused(bob, ids, 'bob-node')
    assert helpers.snapshot(v1) == before


def test_v1_other_user_cannot_use_my_job_in_his_session(v1):
    ids = populate(v1)
    before = helpers.snapshot(v1)
    bob = v1.as_(user='bob')
    session_id = helpers.make_session(bob)
    assert_error(bob.put('sessions', session_id, 'jobs', ids['jobs']), 404)
    assert_error(bob.delete('sessions', session_id, 'jobs', ids['jobs']),
                 404)
    assert bob.doc('sessions', session_id)['jobs'] == {}
    assert helpers.snapshot(v1) == before


def test_v1_other_user_search_does_not_leak(v1):
    ids = populate(v1)
    bob = v1.as_(user='bob')
    assert bob.list('jobs', {'match': [{'job_id': ids['jobs']}]}) == []
    assert bob.list('jobs', {'match': [{'_all': 'nightly'}]}) == []
    assert bob.list('backups', {'time_after': 0}) == []


def test_v1_same_user_other_project_sees_nothing(v1):
    ids = populate(v1)
    elsewhere = v1.as_(project=PROJECT_B)
    for kind in helpers.KINDS:
        assert elsewhere.list(kind) == []
        assert_error(elsewhere.get(kind, ids[kind]), 404)


def test_v1_does_not_show_project_members_documents(client):
    dave_v2 = helpers.Api(client, 'v2', user='dave')
    populate(dave_v2)
    alice_v1 = helpers.Api(client, 'v1')
    for kind in helpers.KINDS:
        assert alice_v1.list(kind) == []


# v2: project-scoped --------------------------------------------------------

def test_v2_project_members_share_documents(v2):
    ids = populate(v2)
    dave = v2.as_(user='dave')
    for kind in helpers.KINDS:
        assert sorted(dave.ids(kind)) == sorted(v2.ids(kind))
        assert dave.get(kind, ids[kind]).status_code == 200
    resp = dave.patch('jobs', ids['jobs'], json={'description': 'by dave'})
    assert resp.status_code == 200
    assert v2.doc('jobs', ids['jobs'])['description'] == 'by dave'
    # the owner stays the creator
    assert v2.doc('jobs', ids['jobs'])['user_id'] == 'alice'


@pytest.mark.parametrize('method,parts', [
    ('GET', ('backups',)), ('POST', ('backups',)), ('GET', ('backups', 'x')),
    ('PATCH', ('backups', 'x')), ('DELETE', ('backups', 'x')),
    ('GET', ('clients',)), ('POST', ('clients',)), ('GET', ('clients', 'x')),
    ('PATCH', ('clients', 'x')), ('DELETE', ('clients', 'x')),
    ('GET', ('jobs',)), ('POST', ('jobs',)), ('GET', ('jobs', 'x')),
    ('POST', ('jobs', 'x')), ('PATCH', ('jobs', 'x')),
    ('DELETE', ('jobs', 'x')), ('POST', ('jobs', 'x', 'event')),
    ('GET', ('actions',)), ('POST', ('actions',)), ('GET', ('actions', 'x')),
    ('POST', ('actions', 'x')), ('PATCH', ('actions', 'x')),
    ('DELETE', ('actions', 'x')),
    ('GET', ('sessions',)), ('POST', ('sessions',)),
    ('GET', ('sessions', 'x')), ('POST', ('sessions', 'x')),
    ('PATCH', ('sessions', 'x')), ('DELETE', ('sessions', 'x')),
    ('POST', ('sessions', 'x', 'action')),
    ('PUT', ('sessions', 'x', 'jobs', 'y')),
    ('DELETE', ('sessions', 'x', 'jobs', 'y')),
])
def test_v2_other_project_in_url_is_403(v2, method, parts):
    ids = populate(v2)
    real = {'x': None, 'y': None}
    kind = parts[0]
    real['x'] = ids[kind]
    real['y'] = ids['jobs']
    parts = tuple(real.get(p, p) or p for p in parts)
    before = helpers.snapshot(v2)
    carol = v2.as_(user='carol', project=PROJECT_B, url_project=PROJECT_A)
    body = {'description': 'x'} if method in ('POST', 'PATCH') else None
    resp = _send(carol, method, parts, body)
    assert_error(resp, 403)
    assert helpers.snapshot(v2) == before


def test_v2_other_project_sees_nothing_in_its_own_url(v2):
    ids = populate(v2)
    before = helpers.snapshot(v2)
    carol = v2.as_(user='carol', project=PROJECT_B)
    for kind in helpers.KINDS:
        assert carol.list(kind) == []
        assert_error(carol.get(kind, ids[kind]), 404)
    helpers.register_client(carol, 'n', client_id='carol-node')
    check_writes_refused(carol, ids, 'carol-node')
    assert helpers.snapshot(v2) == before


def test_v2_admin_may_use_another_project_url(v2):
    ids = populate(v2)
    admin = v2.as_(user='root', project=PROJECT_B, roles='admin',
                   url_project=PROJECT_A)
    for kind in helpers.KINDS:
        assert sorted(admin.ids(kind)) == sorted(v2.ids(kind))
    assert admin.get('jobs', ids['jobs']).status_code == 200


def test_v2_admin_creates_in_url_project(v2):
    admin = v2.as_(user='root', project=PROJECT_B, roles='admin',
                   url_project=PROJECT_A)
    backup_id = helpers.make_backup(admin)
    assert v2.doc('backups', backup_id)['project_id'] == PROJECT_A
    assert admin.as_(url_project=PROJECT_B).list('backups') == []


@pytest.mark.parametrize('project', ['bad project', 'a.b', 'x' * 300])
def test_v2_invalid_url_project(client, project):
    api = helpers.Api(client, 'v2', project=project)
    resp = api.get('jobs')
    helpers.assert_client_error(resp)
    resp = api.post('backups', json=helpers.backup_body())
    helpers.assert_client_error(resp)


# v1 <-> v2 -----------------------------------------------------------------

def test_v1_documents_visible_in_v2_and_back(client):
    v1 = helpers.Api(client, 'v1')
    v2 = helpers.Api(client, 'v2')
    from_v1 = populate(v1)
    for kind in helpers.KINDS:
        assert v2.ids(kind) == v1.ids(kind)
        in_v1 = helpers.strip_version(v1.doc(kind, from_v1[kind]))
        if kind == 'backups':
            # the one difference of shape (spec D13): v2 has no user_name
            assert in_v1.pop('user_name') == 'alice'
        assert helpers.strip_version(v2.doc(kind, from_v1[kind])) == in_v1
    backup_id = helpers.make_backup(v2)
    assert v1.doc('backups', backup_id)['project_id'] == PROJECT_A
    resp = v1.patch('jobs', from_v1['jobs'], json={'description': 'v1'})
    assert resp.status_code == 200
    assert v2.doc('jobs', from_v1['jobs'])['description'] == 'v1'
    assert v2.delete('actions', from_v1['actions']).status_code == 204
    assert_error(v1.get('actions', from_v1['actions']), 404)


def test_client_registered_in_v1_serves_v2_jobs(client):
    v1 = helpers.Api(client, 'v1')
    v2 = helpers.Api(client, 'v2')
    client_id = helpers.register_client(v1, 'node1')
    job_id = helpers.make_job(v2, client_id)
    assert v1.doc('jobs', job_id)['client_id'] == client_id


def test_job_may_use_client_of_project_member_in_v2(v2):
    client_id = helpers.register_client(v2.as_(user='dave'), 'node1')
    helpers.make_job(v2, client_id)


# policy --------------------------------------------------------------------

def test_reader_may_read_not_write(api):
    ids = populate(api)
    reader = api.as_(roles='reader')
    for kind in helpers.KINDS:
        assert reader.get(kind).status_code == 200
        assert reader.get(kind, ids[kind]).status_code == 200
    before = helpers.snapshot(api)
    for method, parts, body in write_attempts(ids, ids['clients']):
        assert_error(_send(reader, method, parts, body), 403)
    creates = [('backups', helpers.backup_body()),
               ('clients', {'client_id': 'reader-node'}),
               ('jobs', helpers.job_body(ids['clients'])),
               ('actions', helpers.action_body()),
               ('sessions', helpers.session_body())]
    for kind, body in creates:
        assert_error(reader.post(kind, json=body), 403)
    assert helpers.snapshot(api) == before


@pytest.mark.parametrize('roles', ['observer', 'service-x'])
def test_no_role_may_do_nothing(api, roles):
    ids = populate(api)
    nobody = api.as_(roles=roles)
    for kind in helpers.KINDS:
        assert_error(nobody.get(kind), 403)
        assert_error(nobody.get(kind, ids[kind]), 403)
    assert_error(nobody.post('backups', json=helpers.backup_body()), 403)


def test_empty_roles_header_grants_nothing(api):
    # an X-Roles header that is present but empty names no role; only an
    # absent header falls back to the configured noauth roles
    populate(api)
    nobody = api.as_(roles='')
    assert_error(nobody.get('jobs'), 403)
    assert_error(nobody.post('backups', json=helpers.backup_body()), 403)


def test_roles_are_case_insensitive_and_trimmed(api):
    assert api.as_(roles=' Member , READER ').get('jobs').status_code == 200
    helpers.make_backup(api.as_(roles='MEMBER'))


def test_all_projects_needs_admin(v2):
    helpers.make_job(v2)
    other = v2.as_(user='carol', project=PROJECT_B)
    helpers.make_job(other)
    resp = v2.get('jobs', query='all_projects=true')
    assert_error(resp, 403)
    resp = v2.get('jobs', query='all_projects=false')
    assert resp.status_code == 200
    assert len(resp.json['jobs']) == 1
    admin = v2.as_(user='root', roles='admin,member,reader')
    resp = admin.get('jobs', query='all_projects=true&limit=100')
    assert resp.status_code == 200
    assert sorted(j['project_id'] for j in resp.json['jobs']) == [
        PROJECT_A, PROJECT_B]
    resp = admin.get('jobs', query='limit=100')
    assert [j['project_id'] for j in resp.json['jobs']] == [PROJECT_A]


def test_default_roles_when_header_absent(client):
    """Without X-Roles the noauth identity has admin,member,reader."""
    headers = {'X-User-Id': 'alice', 'X-Project-Id': PROJECT_A}
    resp = client.simulate_post('/v1/backups', json=helpers.backup_body(),
                                headers=headers)
    assert resp.status_code == 201


def test_token_form_identity(client):
    resp = client.simulate_post('/v1/backups', json=helpers.backup_body(),
                                headers={'X-Auth-Token': 'zed:proj-z'})
    assert resp.status_code == 201
    doc = client.simulate_get(f'/v2/proj-z/backups/'
                              f'{resp.json["backup_id"]}',
                              headers={'X-Auth-Token': 'zed:proj-z'}).json
    assert doc['user_id'] == 'zed'
    assert doc['project_id'] == 'proj-z'
