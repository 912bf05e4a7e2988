"""Central schedulers and their Keystone trusts, against a real Keystone.

A central client (``is_central: true``, admin only) is visible to every
project; a job aimed at it carries ``user_credentials.trust_id``: a trust
from the job's user to the freezer service user on the job's project,
reused for that user's later jobs. The service user acts through it.
"""

import uuid

import pytest
import requests

from tests.auth import pipeline
from tests.auth.test_keystone import job_body


def new_id():
    return uuid.uuid4().hex[:10]


@pytest.fixture
def api(tmp_path, keystone):
    return pipeline.load(tmp_path, keystone)


@pytest.fixture
def people(keystone):
    project = f'p-{new_id()}'
    return {'member': keystone.new_account(project, 'member'),
            'reader': keystone.new_account(project, 'reader'),
            'stranger': keystone.new_account(f'p-{new_id()}', 'member')}


def register_central(api, keystone):
    client_id = f'{keystone.admin.project_id}_central-{new_id()}'
    resp = api.call('POST', f'/v2/{keystone.admin.project_id}/clients',
                    keystone.admin, {'client_id': client_id,
                                     'hostname': 'central',
                                     'is_central': True})
    assert resp.status_code == 201, resp.text
    return client_id


def create_job(api, account, client_id, **extra):
    resp = api.call('POST', f'/v2/{account.project_id}/jobs', account,
                    {**job_body(client_id), **extra})
    assert resp.status_code == 201, resp.text
    job_id = resp.json['job_id']
    return api.call('GET', f'/v2/{account.project_id}/jobs/{job_id}',
                    account).json


def trust_token(keystone, trust_id):
    """What a central scheduler does: a token of the service user scoped
    to the trust."""
    service = keystone.service
    resp = requests.post(f'{keystone.auth_url}/auth/tokens', timeout=30,
                         json={'auth': {
                             'identity': {'methods': ['password'],
                                          'password': {'user': {
                                              'name': service.username,
                                              'password': service.password,
                                              'domain': {'name': 'Default'}}}},
                             'scope': {'OS-TRUST:trust': {'id': trust_id}}}})
    assert resp.status_code == 201, resp.text
    return resp.headers['X-Subject-Token']


def test_only_an_admin_registers_a_central_client(api, keystone, people):
    member = people['member']
    resp = api.call('POST', f'/v2/{member.project_id}/clients', member,
                    {'client_id': f'{member.project_id}_x',
                     'is_central': True})
    assert resp.status_code == 403
    assert 'central' in resp.json['description']
    # the scheduler's usual registration, is_central false, is fine
    resp = api.call('POST', f'/v2/{member.project_id}/clients', member,
                    {'client_id': f'{member.project_id}_x',
                     'is_central': False})
    assert resp.status_code == 201
    register_central(api, keystone)


def test_a_central_client_is_visible_to_every_project(api, keystone,
                                                      people):
    client_id = register_central(api, keystone)
    for account in people.values():
        base = f'/v2/{account.project_id}/clients'
        listed = api.call('GET', base, account).json['clients']
        assert client_id in [c['client']['client_id'] for c in listed]
        resp = api.call('GET', f'{base}/{client_id}', account)
        assert resp.status_code == 200
        assert resp.json['client']['is_central'] is True
        # ... but only its own project may change or remove it
        assert api.call('DELETE', f'{base}/{client_id}',
                        account).status_code in (403, 404)
        assert api.call('PATCH', f'{base}/{client_id}', account,
                        {'description': 'x'}).status_code in (403, 404)
    found = api.call('GET', f'/v2/{people["member"].project_id}/clients',
                     people['member'],
                     {'match': [{'hostname': 'central'}]}).json['clients']
    assert client_id in [c['client']['client_id'] for c in found]


def test_paging_puts_central_clients_first_without_losing_any(
        api, keystone, people):
    member = people['member']
    central = {register_central(api, keystone) for _ in range(2)}
    own = set()
    for n in range(3):
        own.add(f'{member.project_id}_node{n}')
        assert api.call('POST', f'/v2/{member.project_id}/clients', member,
                        {'client_id': f'{member.project_id}_node{n}'}
                        ).status_code == 201
    seen = []
    for offset in range(0, 40, 2):
        page = api.call('GET', f'/v2/{member.project_id}/clients?limit=2'
                               f'&offset={offset}', member).json['clients']
        seen += [c['client']['client_id'] for c in page]
        if len(page) < 2:
            break
    assert len(seen) == len(set(seen))
    assert central | own <= set(seen)
    assert set(seen[-3:]) == own


def test_a_job_for_a_central_client_gets_a_reusable_trust(
        api, tmp_path, keystone, people):
    member = people['member']
    client_id = register_central(api, keystone)
    first = create_job(api, member, client_id,
                       user_credentials={'trust_id': 'forged'})
    trust_id = first['user_credentials']['trust_id']
    assert trust_id != 'forged'
    trust = keystone.call('GET', f'/OS-TRUST/trusts/{trust_id}',
                          token=keystone.token(member))['trust']
    assert trust['trustor_user_id'] == member.user_id
    assert trust['trustee_user_id'] == keystone.service.user_id
    assert trust['project_id'] == member.project_id
    assert trust['impersonation'] is True
    assert {r['name'] for r in trust['roles']} == {'member'}
    # later jobs of the user reuse it, also in another API process
    assert create_job(api, member, client_id)['user_credentials'] == {
        'trust_id': trust_id}
    (tmp_path / 'other').mkdir()
    other_process = pipeline.load(tmp_path / 'other', keystone)
    client2 = register_central(other_process, keystone)
    assert create_job(other_process, member, client2)[
        'user_credentials'] == {'trust_id': trust_id}
    # another user gets a trust of their own
    stranger = people['stranger']
    theirs = create_job(api, stranger, client_id)['user_credentials']
    assert theirs['trust_id'] != trust_id


def test_a_job_for_an_ordinary_client_has_no_trust(api, people):
    member = people['member']
    client_id = f'{member.project_id}_node'
    api.call('POST', f'/v2/{member.project_id}/clients', member,
             {'client_id': client_id})
    job = create_job(api, member, client_id,
                     user_credentials={'trust_id': 'forged'})
    assert 'user_credentials' not in job


def test_the_central_scheduler_acts_through_the_trust(api, keystone,
                                                      people):
    member, stranger = people['member'], people['stranger']
    client_id = register_central(api, keystone)
    jobs = [create_job(api, member, client_id),
            create_job(api, stranger, client_id)]
    # its poll: every project's jobs for this client, as an admin
    admin = keystone.admin
    resp = api.call('GET', f'/v2/{admin.project_id}/jobs?all_projects=true'
                           '&limit=100', admin,
                    {'match': [{'client_id': client_id}],
                     'match_not': [{'status': 'completed'}]})
    assert {j['job_id'] for j in resp.json['jobs']} == {
        j['job_id'] for j in jobs}
    for job in jobs:
        token = trust_token(keystone, job['user_credentials']['trust_id'])
        base = f'/v2/{job["project_id"]}'
        resp = api.call('PATCH', f'{base}/jobs/{job["job_id"]}', token=token,
                        body={'job_schedule': {'status': 'running'}})
        assert resp.status_code == 200, resp.text
        resp = api.call('POST', f'{base}/backups', token=token, body={
            'container': 'c', 'backup_name': 'b', 'hostname': 'central',
            'job_id': job['job_id']})
        assert resp.status_code == 201, resp.text
        backup = api.call('GET', f'{base}/backups/{resp.json["backup_id"]}',
                          token=token).json
        # impersonation: what it writes belongs to the job's user
        assert backup['user_id'] == job['user_id']
        # and the trust reaches no other project
        other = jobs[1] if job is jobs[0] else jobs[0]
        assert api.call('GET', f'/v2/{other["project_id"]}/jobs',
                        token=token).status_code == 403


def test_a_reader_cannot_make_jobs_for_a_central_client(
        api, keystone, people):
    client_id = register_central(api, keystone)
    reader = people['reader']
    resp = api.call('POST', f'/v2/{reader.project_id}/jobs', reader,
                    job_body(client_id))
    assert resp.status_code == 403


def test_keystone_down_is_503_and_nothing_is_stored(tmp_path, keystone,
                                                    people):
    # NOTE: the trustee is looked up through a dead identity endpoint,
    # while tokens are still validated by the live Keystone.
    dead = f'http://127.0.0.1:{pipeline.servers.free_port()}/v3'
    service = keystone.service
    api = pipeline.load(tmp_path, keystone, extra="""
        [centralized_scheduler]
        auth_section = central_identity
        """, config_extra=f"""
[central_identity]
auth_type = password
auth_url = {dead}
username = {service.username}
password = {service.password}
project_name = service
user_domain_name = Default
project_domain_name = Default
""")
    member = people['member']
    client_id = register_central(api, keystone)
    resp = api.call('POST', f'/v2/{member.project_id}/jobs', member,
                    job_body(client_id))
    assert resp.status_code == 503, resp.text
    assert resp.headers['Retry-After']
    listed = api.call('GET', f'/v2/{member.project_id}/jobs', member).json
    assert listed['jobs'] == []


def test_central_clients_are_refused_when_disabled(tmp_path, keystone):
    api = pipeline.load(tmp_path, keystone, extra="""
        [centralized_scheduler]
        enabled = false
        """)
    admin = keystone.admin
    resp = api.call('POST', f'/v2/{admin.project_id}/clients', admin,
                    {'client_id': 'central-x', 'is_central': True})
    assert resp.status_code == 400
    assert 'not enabled' in resp.json['description']


def test_a_policy_file_overrides_the_defaults(tmp_path, keystone, people):
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text('"backups:create": "role:reader"\n'
                           '"backups:get_all": "!"\n')
    api = pipeline.load(tmp_path, keystone, config_extra=f"""
[oslo_policy]
policy_file = {policy_file}
""")
    reader = people['reader']
    resp = api.call('POST', f'/v2/{reader.project_id}/backups', reader,
                    {'container': 'c', 'backup_name': 'b',
                     'hostname': 'h'})
    assert resp.status_code == 201, resp.text
    resp = api.call('GET', f'/v2/{reader.project_id}/backups', reader)
    assert resp.status_code == 403
    # rules the file does not name keep their defaults
    resp = api.call('POST', f'/v2/{reader.project_id}/jobs', reader,
                    job_body('x'))
    assert resp.status_code == 403
