"""Central clients on every storage engine (spec §2.2 H, issue 4).

Visibility and paging of central clients are storage queries, so they run
on SQLite, PostgreSQL and Elasticsearch here. Keystone itself is replaced
by ``RecordingTrusts``, a stand-in that hands out trust ids and records
who asked: the real trusts are tested against a real Keystone in
tests/auth/test_central_scheduler.py.
"""

import falcon.testing
import pytest

from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api.identity import errors as identity_errors
from tests.api.helpers import Api
from tests.api.helpers import assert_error

ADMIN_PROJECT = 'proj-admin'


class RecordingTrusts:
    """Stands in for freezer_api.identity.trusts.KeystoneTrusts."""

    def __init__(self):
        self.calls = []
        self.fail = None

    def trust_id(self, token, user_id, project_id):
        self.calls.append((token, user_id, project_id))
        if self.fail is not None:
            raise self.fail
        return f'trust-{user_id}-{project_id}'


@pytest.fixture
def trusts():
    return RecordingTrusts()


@pytest.fixture
def http(conf, storage, clock, policy_enforcer, trusts):
    app = app_module.create_app(conf, storage, enforcer=policy_enforcer,
                                clock=clock, trusts=trusts)
    return falcon.testing.TestClient(context.NoAuthMiddleware(app, conf))


@pytest.fixture(params=['v1', 'v2'])
def member(request, http):
    return Api(http, request.param, user='alice', project='proj-a',
               roles='member,reader')


@pytest.fixture
def admin(http):
    return Api(http, 'v2', user='root', project=ADMIN_PROJECT,
               roles='admin,member,reader')


def register(api, client_id, **extra):
    resp = api.post('clients', json={'client_id': client_id, **extra})
    assert resp.status_code == 201, resp.text


JOB = {'job_schedule': {}, 'job_actions': [{'freezer_action': {
    'action': 'backup', 'mode': 'fs', 'backup_name': 'b',
    'path_to_backup': '/etc', 'container': 'c'}}]}


def test_central_clients_come_first_then_the_callers_own(member, admin):
    for n in range(3):
        register(admin, f'central{n}', is_central=True)
    register(admin, 'admins-own-node')
    for n in range(4):
        register(member, f'own{n}')
    everything = member.ids('clients')
    assert everything == ['central0', 'central1', 'central2', 'own0',
                          'own1', 'own2', 'own3']
    pages = [member.ids('clients', query=f'limit=2&offset={offset}')
             for offset in range(0, 8, 2)]
    assert sum(pages, []) == everything
    assert member.ids('clients', query='limit=3&offset=2') == [
        'central2', 'own0', 'own1']
    # a search applies to both parts
    assert member.ids('clients', search={'match': [
        {'client_id': 'central1'}]}) == ['central1']
    assert member.ids('clients', search={'match_not': [
        {'is_central': True}]}) == ['own0', 'own1', 'own2', 'own3']
    # the admin sees each central client once, not twice
    assert admin.ids('clients').count('central0') == 1


def test_a_central_client_is_read_only_outside_its_project(member, admin):
    register(admin, 'central', is_central=True)
    assert member.doc('clients', 'central')['client']['is_central'] is True
    assert_error(member.patch('clients', 'central',
                              json={'description': 'x'}), 404)
    assert_error(member.delete('clients', 'central'), 404)
    assert admin.doc('clients', 'central')['_version'] == 1


def test_jobs_for_central_clients_carry_the_callers_trust(member, admin,
                                                          trusts):
    register(admin, 'central', is_central=True)
    register(member, 'own')
    resp = member.post('jobs', json={'client_id': 'central', **JOB,
                                     'user_credentials': {'trust_id': 'x'}})
    assert resp.status_code == 201, resp.text
    job = member.doc('jobs', resp.json['job_id'])
    assert job['user_credentials'] == {'trust_id': 'trust-alice-proj-a'}
    assert trusts.calls[-1][1:] == ('alice', 'proj-a')
    # moving it to an ordinary client drops the trust
    resp = member.patch('jobs', job['job_id'], json={'client_id': 'own'})
    assert resp.status_code == 200, resp.text
    assert 'user_credentials' not in member.doc('jobs', job['job_id'])
    # a PATCH cannot set one either
    resp = member.patch('jobs', job['job_id'], json={
        'user_credentials': {'trust_id': 'stolen'}})
    assert resp.status_code == 200
    assert 'user_credentials' not in member.doc('jobs', job['job_id'])


@pytest.mark.parametrize('failure,status', [
    (identity_errors.Unavailable('Keystone is down'), 503),
    (identity_errors.Refused('no role to delegate'), 403),
])
def test_a_trust_failure_stores_nothing(member, admin, trusts, failure,
                                        status):
    register(admin, 'central', is_central=True)
    trusts.fail = failure
    resp = member.post('jobs', json={'client_id': 'central', **JOB})
    assert_error(resp, status)
    assert member.list('jobs') == []
    assert member.list('actions') == []


def test_only_admins_register_central_clients(member):
    assert_error(member.post('clients', json={'client_id': 'c',
                                              'is_central': True}), 403)
    assert member.list('clients') == []


# What a central scheduler runs (issue 13 point 3) -------------------------

EXEC = {'job_schedule': {}, 'job_actions': [{'freezer_action': {
    'action': 'exec', 'command': 'cat /etc/freezer/scheduler.conf'}}]}
ALL_ACTIONS = ['backup', 'restore', 'info', 'admin', 'exec']


def test_central_client_without_lists_runs_no_exec(member, admin):
    register(admin, 'central', is_central=True)
    info = member.doc('clients', 'central')['client']
    # its document lists what it runs: everything but exec
    assert info['supported_actions'] == ['backup', 'restore', 'info',
                                         'admin']
    assert info['supported_modes'] and info['supported_storages']
    assert info['supported_engines']
    for caller in (member, admin):
        resp = caller.post('jobs', json={'client_id': 'central', **EXEC})
        assert_error(resp, 422)
        assert resp.json['description'] == (
            'Client does not support action: exec')
    # ordinary actions are fine, as for upstream's API tests
    resp = member.post('jobs', json={'client_id': 'central', **JOB})
    assert resp.status_code == 201, resp.text


def test_exec_on_a_central_client_needs_the_policy_rule(member, admin):
    register(admin, 'central', is_central=True,
             supported_actions=ALL_ACTIONS)
    register(member, 'own')
    before = member.list('jobs')
    resp = member.post('jobs', json={'client_id': 'central', **EXEC})
    assert_error(resp, 403)
    assert 'jobs:create_central_exec' in resp.json['description']
    assert member.list('jobs') == before
    assert member.list('actions') == []
    # an exec job for the member's own node is its own business
    resp = member.post('jobs', json={'client_id': 'own', **EXEC})
    assert resp.status_code == 201, resp.text
    job_id = resp.json['job_id']
    (exec_action_id,) = member.ids('actions')
    # ... but it cannot be moved to the central scheduler, nor can a
    # central job be given exec, inline or by reference
    assert_error(member.patch('jobs', job_id,
                              json={'client_id': 'central'}), 403)
    resp = member.post('jobs', json={'client_id': 'central', **JOB})
    assert resp.status_code == 201, resp.text
    central_job = resp.json['job_id']
    before = member.doc('jobs', central_job)
    assert_error(member.patch('jobs', central_job, json={
        'job_actions': EXEC['job_actions']}), 403)
    assert_error(member.patch('jobs', central_job, json={
        'job_actions': [{'action_id': exec_action_id}]}), 403)
    assert_error(member.post('jobs', central_job, json={
        'client_id': 'central', **EXEC}), 403)
    assert_error(member.post('jobs', json={
        'client_id': 'central', 'action_defaults': {'action': 'exec'},
        'job_actions': [{'freezer_action': {'command': 'id'}}]}), 403)
    assert member.doc('jobs', central_job) == before
    # admins may (the rule's default)
    resp = admin.post('jobs', json={'client_id': 'central', **EXEC})
    assert resp.status_code == 201, resp.text


def test_central_client_lists_are_kept_as_given(admin, member):
    register(admin, 'central', is_central=True,
             supported_actions=['backup'], supported_modes=['fs'])
    info = member.doc('clients', 'central')['client']
    assert info['supported_actions'] == ['backup']
    assert info['supported_modes'] == ['fs']
    resp = member.post('jobs', json={'client_id': 'central', **JOB})
    assert resp.status_code == 201, resp.text
    job = {**JOB, 'job_actions': [{'freezer_action': {
        **JOB['job_actions'][0]['freezer_action'], 'mode': 'mysql'}}]}
    assert_error(member.post('jobs', json={'client_id': 'central', **job}),
                 422)
