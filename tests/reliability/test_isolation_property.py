"""Tenant isolation as a property (issue 7, spec D2, D15, D16).

``test_isolation_holds_for_any_sequence``: hypothesis drives sequences of
operations by users of three projects through v1 and v2 (create, list with
and without search, get, patch, replace, delete, job events, session
start/end, add and remove jobs) against the in-process API over a real
driver. A model says who may see what; after every step

* every list, for every caller and version, shows exactly the documents
  of the caller's scope (v2: its project; v1: its own within its project),
* every answer names only documents of the caller's project,
* no document outside the caller's project changed (versions are compared
  through the driver, which sees everything), and a refused request
  changed nothing at all.

``test_keystone_identity_headers_never_override_the_token``: in keystone
mode, whatever identity headers a client adds, what it creates is owned
by the token's user and project and what it sees is the token's project.

Sizes: ``FREEZER_ISOLATION_EXAMPLES`` (sequences, default 15),
``FREEZER_ISOLATION_STEPS`` (steps per sequence, default 30),
``FREEZER_SPOOF_EXAMPLES`` (keystone cases, default 40).
"""

import json
import uuid

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import invariant
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from freezer_api.storage.base import Scope
from freezer_api.storage.query import Query
from tests.api import helpers
from tests.reliability.figures import env_int

EXAMPLES = env_int('FREEZER_ISOLATION_EXAMPLES', 15)
STEPS = env_int('FREEZER_ISOLATION_STEPS', 30)
SPOOF_EXAMPLES = env_int('FREEZER_SPOOF_EXAMPLES', 40)

KINDS = helpers.KINDS
REPLACEABLE = ('jobs', 'actions', 'sessions')
DESCRIPTIONS = ('red', 'green', 'blue')

# (name, project suffix, roles); three projects, two members and a
# reader in the first one.
ACTORS = [('ann', 'a', 'member,reader'), ('amy', 'a', 'member,reader'),
          ('ada', 'a', 'reader'), ('bob', 'b', 'member,reader'),
          ('cat', 'c', 'member,reader')]
VERSIONS = ('v1', 'v2')

_RUN = iter(range(10 ** 9))


class Doc:
    def __init__(self, kind, doc_id, project, user, description):
        self.kind, self.id = kind, doc_id
        self.project, self.user = project, user
        self.description = description
        self.session = None       # jobs: the session they belong to
        self.members = set()      # sessions: their jobs


def _body(kind, description, client_id=None, client_no=0):
    if kind == 'backups':
        return helpers.backup_body(description=description)
    if kind == 'clients':
        return {'client_id': client_id, 'hostname': f'h{client_no}',
                'description': description}
    if kind == 'jobs':
        return helpers.job_body(client_id, description=description)
    if kind == 'actions':
        return helpers.action_body(description=description)
    return helpers.session_body(description=description)


def make_machine(client, storage, figures):
    """A state machine class bound to one app and its driver."""

    class Isolation(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            run = next(_RUN)
            # fresh projects per sequence: earlier sequences' documents
            # live in other projects, which is exactly what must not show
            self.projects = {s: f'r{run}-{s}' for s in 'abc'}
            self.docs = {}              # (kind, id) -> Doc
            self.clients = 0
            self.allowed = set()        # projects the last step may change
            self.versions = self._versions()

        # -- helpers -------------------------------------------------------

        def api(self, actor, version, url_project=None):
            name, suffix, roles = actor
            return helpers.Api(client, version, user=name,
                               project=self.projects[suffix], roles=roles,
                               url_project=url_project)

        @staticmethod
        def can_write(actor):
            return 'member' in actor[2]

        def visible(self, actor, version, doc):
            name, suffix, _ = actor
            if doc.project != self.projects[suffix]:
                return False
            return version == 'v2' or doc.user == name

        def _versions(self):
            """(kind, project, id) -> (version, user) of this sequence's
            projects, read through the driver (it sees every scope)."""
            seen = {}
            for project in self.projects.values():
                for kind in KINDS:
                    for record in storage.list(kind, Scope(project),
                                               Query(), 1000, 0):
                        seen[(kind, project, record.id)] = (
                            record.version, record.user_id)
            return seen

        def check_answer(self, resp, actor):
            """No answer names a document of another project."""
            figures.add('requests')
            figures.add('operations')
            assert resp.status_code < 500, resp.text
            if resp.status_code >= 400:
                helpers.assert_error(resp, resp.status_code)
                self.allowed = set()
            if not resp.content:
                return
            own = self.projects[actor[1]]
            text = resp.text
            for suffix, project in self.projects.items():
                if project != own:
                    assert f'"{project}"' not in text, (actor, text[:300])

        def pick(self, data, kind=None):
            docs = [d for d in self.docs.values()
                    if kind is None or d.kind == kind]
            if not docs:
                return None
            return data.draw(st.sampled_from(sorted(
                docs, key=lambda d: (d.kind, d.id))))

        # -- operations ----------------------------------------------------

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS),
              kind=st.sampled_from(KINDS),
              description=st.sampled_from(DESCRIPTIONS))
        def create(self, data, actor, version, kind, description):
            api = self.api(actor, version)
            self.allowed = {api.project}
            client_id = None
            if kind == 'clients':
                self.clients += 1
                client_id = f'{api.project}_n{self.clients}'
            elif kind == 'jobs':
                mine = [d for d in self.docs.values() if d.kind == 'clients'
                        and self.visible(actor, version, d)]
                client_id = (data.draw(st.sampled_from(
                    sorted(d.id for d in mine))) if mine else 'nobody')
            resp = api.post(kind, json=_body(kind, description, client_id,
                                             self.clients))
            self.check_answer(resp, actor)
            if not self.can_write(actor):
                assert resp.status_code == 403, resp.text
                return
            if kind == 'jobs' and client_id == 'nobody':
                assert resp.status_code == 422, resp.text
                return
            assert resp.status_code == 201, resp.text
            doc_id = resp.json[helpers.ID_FIELDS[kind]]
            self.docs[(kind, doc_id)] = Doc(kind, doc_id, api.project,
                                            actor[0], description)
            if kind == 'jobs':
                # the job's actions are kept as action documents too
                self.refresh_actions(api.project)

        def refresh_actions(self, project):
            for record in storage.list('actions', Scope(project), Query(),
                                       1000, 0):
                if ('actions', record.id) not in self.docs:
                    self.docs[('actions', record.id)] = Doc(
                        'actions', record.id, record.project_id,
                        record.user_id,
                        record.doc.get('description', ''))

        @rule(actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS),
              kind=st.sampled_from(KINDS),
              description=st.none() | st.sampled_from(DESCRIPTIONS))
        def list_docs(self, actor, version, kind, description):
            api = self.api(actor, version)
            self.allowed = set()
            search = None
            if description is not None and kind != 'backups':
                search = {'match': [{'description': description}]}
            resp = api.get(kind, query='limit=1000',
                           **({} if search is None else {'json': search}))
            self.check_answer(resp, actor)
            assert resp.status_code == 200, resp.text
            got = {helpers.doc_id(kind, d) for d in resp.json[kind]}
            expected = {d.id for d in self.docs.values() if d.kind == kind
                        and self.visible(actor, version, d)
                        and (search is None
                             or d.description == description)}
            assert got == expected, (actor, version, kind, search)

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS))
        def get(self, data, actor, version):
            doc = self.pick(data)
            if doc is None:
                return
            api = self.api(actor, version)
            self.allowed = set()
            resp = api.get(doc.kind, doc.id)
            self.check_answer(resp, actor)
            if self.visible(actor, version, doc):
                assert resp.status_code == 200, resp.text
                assert resp.json['project_id'] == doc.project
            else:
                assert resp.status_code == 404, resp.text

        def _write_expectation(self, actor, version, doc, success):
            if not self.can_write(actor):
                return 403
            if not self.visible(actor, version, doc):
                return 404
            return success

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS),
              description=st.sampled_from(DESCRIPTIONS))
        def patch(self, data, actor, version, description):
            doc = self.pick(data)
            if doc is None:
                return
            api = self.api(actor, version)
            self.allowed = {api.project}
            body = ({'status': 'available'} if doc.kind == 'backups' else
                    {'description': description,
                     # server-owned fields in a patch are ignored (D6)
                     'project_id': self.projects['b'], 'user_id': 'bob'})
            resp = api.patch(doc.kind, doc.id, json=body)
            self.check_answer(resp, actor)
            expected = self._write_expectation(actor, version, doc, 200)
            assert resp.status_code == expected, (expected, resp.text)
            if expected == 200 and doc.kind != 'backups':
                doc.description = description

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS),
              description=st.sampled_from(DESCRIPTIONS))
        def replace(self, data, actor, version, description):
            kind = data.draw(st.sampled_from(REPLACEABLE))
            doc = self.pick(data, kind)
            if doc is None:
                return
            api = self.api(actor, version)
            self.allowed = {api.project}
            client_id = None
            if kind == 'jobs':
                mine = sorted(d.id for d in self.docs.values()
                              if d.kind == 'clients'
                              and self.visible(actor, version, d))
                if not mine:
                    return
                client_id = data.draw(st.sampled_from(mine))
            resp = api.post(kind, doc.id,
                            json=_body(kind, description, client_id))
            self.check_answer(resp, actor)
            if not self.can_write(actor):
                expected = {403}
            elif self.visible(actor, version, doc):
                expected = {201}
            else:
                # the id is taken by a document the caller cannot see
                expected = {404, 409}
            assert resp.status_code in expected, (expected, resp.text)
            if resp.status_code == 201:
                doc.description = description
                if kind == 'jobs':
                    self.refresh_actions(api.project)

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS))
        def delete(self, data, actor, version):
            doc = self.pick(data)
            if doc is None:
                return
            api = self.api(actor, version)
            self.allowed = {api.project}
            resp = api.delete(doc.kind, doc.id)
            self.check_answer(resp, actor)
            expected = self._write_expectation(actor, version, doc, 204)
            assert resp.status_code == expected, (expected, resp.text)
            if expected == 204:
                del self.docs[(doc.kind, doc.id)]
                if doc.session is not None:
                    self.docs[('sessions', doc.session)].members.discard(
                        doc.id)
                for job_id in doc.members:
                    self.docs[('jobs', job_id)].session = None

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS),
              event=st.sampled_from(['start', 'stop', 'abort']))
        def job_event(self, data, actor, version, event):
            doc = self.pick(data, 'jobs')
            if doc is None:
                return
            api = self.api(actor, version)
            self.allowed = {api.project}
            resp = api.post('jobs', doc.id, 'event', json={event: None})
            self.check_answer(resp, actor)
            expected = self._write_expectation(actor, version, doc, 202)
            assert resp.status_code == expected, (expected, resp.text)

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS))
        def add_job(self, data, actor, version):
            session, job = self.pick(data, 'sessions'), self.pick(data,
                                                                  'jobs')
            if session is None or job is None:
                return
            api = self.api(actor, version)
            self.allowed = {api.project}
            resp = api.put('sessions', session.id, 'jobs', job.id)
            self.check_answer(resp, actor)
            if not self.can_write(actor):
                expected = 403
            elif not (self.visible(actor, version, session)
                      and self.visible(actor, version, job)):
                expected = 404
            else:
                expected = 204
            assert resp.status_code == expected, (expected, resp.text)
            if expected == 204:
                if job.session is not None and job.session != session.id:
                    self.docs[('sessions', job.session)].members.discard(
                        job.id)
                job.session = session.id
                session.members.add(job.id)

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS))
        def remove_job(self, data, actor, version):
            session, job = self.pick(data, 'sessions'), self.pick(data,
                                                                  'jobs')
            if session is None or job is None:
                return
            api = self.api(actor, version)
            self.allowed = {api.project}
            resp = api.delete('sessions', session.id, 'jobs', job.id)
            self.check_answer(resp, actor)
            if not self.can_write(actor):
                expected = {403}
            elif not self.visible(actor, version, session):
                expected = {404}
            elif job.id in session.members:
                expected = {204} if self.visible(actor, version, job) else {
                    204, 404}
            else:
                expected = {204, 404}
            assert resp.status_code in expected, (expected, resp.text)
            if resp.status_code == 204:
                session.members.discard(job.id)
                if job.session == session.id and self.visible(
                        actor, version, job):
                    job.session = None

        @rule(data=st.data(), actor=st.sampled_from(ACTORS),
              version=st.sampled_from(VERSIONS),
              action=st.sampled_from(['start', 'end']))
        def session_action(self, data, actor, version, action):
            session = self.pick(data, 'sessions')
            if session is None:
                return
            members = sorted(session.members)
            job_id = (data.draw(st.sampled_from(members)) if members
                      else uuid.uuid4().hex)
            api = self.api(actor, version)
            self.allowed = {api.project}
            params = {'job_id': job_id, 'current_tag': 0}
            if action == 'end':
                params.update(current_tag=1, result='success')
            resp = api.post('sessions', session.id, 'action',
                            json={action: params})
            self.check_answer(resp, actor)
            if not self.can_write(actor):
                expected = {403}
            elif not self.visible(actor, version, session):
                expected = {404}
            elif job_id not in session.members:
                expected = {400}
            else:
                # a 400 is "tag too high" once another run started
                expected = {202, 400}
            assert resp.status_code in expected, (expected, resp.text)

        @rule(data=st.data(), actor=st.sampled_from(ACTORS))
        def foreign_url_project(self, data, actor):
            doc = self.pick(data)
            suffix = data.draw(st.sampled_from(
                [s for s in 'abc' if s != actor[1]]))
            api = self.api(actor, 'v2', url_project=self.projects[suffix])
            self.allowed = set()
            method = data.draw(st.sampled_from(['GET', 'PATCH', 'DELETE']))
            parts = (doc.kind, doc.id) if doc else ('jobs',)
            resp = api.call(method, *parts,
                            json={'description': 'x'} if method == 'PATCH'
                            else helpers._MISSING)
            self.check_answer(resp, actor)
            assert resp.status_code == 403, resp.text

        # -- invariants ----------------------------------------------------

        @invariant()
        def nothing_outside_the_scope_changed(self):
            now = self._versions()
            mine = {p for p in self.projects.values()}
            for key in set(now) | set(self.versions):
                kind, project, _ = key
                if now.get(key) != self.versions.get(key):
                    assert project in self.allowed, (
                        'changed outside the caller scope', key,
                        self.versions.get(key), now.get(key))
                    assert project in mine, key
            self.versions = now
            figures.add('invariant checks')

        @invariant()
        def every_caller_lists_exactly_its_scope(self):
            # one kind per step, in turn (all kinds at the end)
            self.turn = getattr(self, 'turn', -1) + 1
            self.check_lists([KINDS[self.turn % len(KINDS)]])

        def check_lists(self, kinds):
            for actor in ACTORS:
                for version in VERSIONS:
                    api = self.api(actor, version)
                    for kind in kinds:
                        resp = api.get(kind, query='limit=1000')
                        figures.add('requests')
                        assert resp.status_code == 200, resp.text
                        got = {helpers.doc_id(kind, d)
                               for d in resp.json[kind]}
                        expected = {
                            d.id for d in self.docs.values()
                            if d.kind == kind
                            and self.visible(actor, version, d)}
                        assert got == expected, (actor, version, kind)

        def teardown(self):
            self.check_lists(KINDS)

    return Isolation


BACKENDS = ('sqlite', 'postgresql', 'elasticsearch')


def test_isolation_holds_for_any_sequence(client, storage, storage_backend,
                                          figures):
    machine = make_machine(client, storage, figures)
    examples = EXAMPLES if storage_backend == 'sqlite' else max(
        3, EXAMPLES // 5)
    settings = hypothesis.settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None,
        derandomize=False, database=None,
        suppress_health_check=list(hypothesis.HealthCheck))
    run_state_machine_as_test(machine, settings=settings)
    figures.add('sequences', examples)


# -- keystone mode -------------------------------------------------------

SPOOF_HEADERS = ('X-User-Id', 'X-User-Name', 'X-Project-Id', 'X-Tenant-Id',
                 'X-Project-Name', 'X-Roles', 'X-Role', 'X-Identity-Status',
                 'X-Is-Admin-Project', 'X-Service-Roles', 'X-Domain-Id',
                 'X-User-Domain-Id', 'X-Project-Domain-Id',
                 'X-Service-Token', 'X-Tenant', 'X-User')


@pytest.fixture(scope='module')
def spoof_accounts(keystone):
    suffix = uuid.uuid4().hex[:8]
    return {'member': keystone.new_account(f'spoof-a-{suffix}', 'member'),
            'reader': keystone.new_account(f'spoof-a-{suffix}', 'reader'),
            'other': keystone.new_account(f'spoof-b-{suffix}', 'member')}


def test_keystone_identity_headers_never_override_the_token(
        keystone_api, keystone, spoof_accounts, figures):
    member, reader = spoof_accounts['member'], spoof_accounts['reader']
    other = spoof_accounts['other']
    # what the other project owns: must never be seen or changed
    resp = keystone_api.request(
        'POST', f'/v2/{other.project_id}/sessions/', account=other,
        json=helpers.session_body(description='theirs'))
    assert resp.status_code == 201, resp.text
    theirs = resp.json()['session_id']
    values = st.sampled_from([other.user_id, other.project_id, 'admin',
                              'admin,member,reader', 'Confirmed', 'True',
                              'service', keystone.admin.user_id,
                              keystone.admin.project_id, ''])

    @hypothesis.settings(max_examples=SPOOF_EXAMPLES, deadline=None,
                         database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(
        spoofed=st.dictionaries(st.sampled_from(SPOOF_HEADERS), values,
                                min_size=1),
        caller=st.sampled_from(['member', 'reader']),
        operation=st.sampled_from(['create', 'list', 'get-theirs',
                                   'patch-theirs', 'foreign-url',
                                   'all-projects', 'v1-list']))
    def check(spoofed, caller, operation):
        account = member if caller == 'member' else reader
        base = f'/v2/{account.project_id}'
        headers = dict(spoofed)
        figures.add('requests')
        if operation == 'create':
            resp = keystone_api.request(
                'POST', base + '/backups/', account=account,
                headers=headers, json=helpers.backup_body())
            if caller == 'reader':
                assert resp.status_code == 403, resp.text
                return
            assert resp.status_code == 201, resp.text
            doc = keystone_api.request(
                'GET', base + f'/backups/{resp.json()["backup_id"]}',
                account=account).json()
            assert doc['user_id'] == account.user_id
            assert doc['project_id'] == account.project_id
        elif operation in ('list', 'v1-list'):
            path = (base if operation == 'list' else '/v1') + '/sessions/'
            resp = keystone_api.request('GET', path, account=account,
                                        headers=headers)
            assert resp.status_code == 200, resp.text
            for doc in resp.json()['sessions']:
                assert doc['project_id'] == account.project_id
        elif operation in ('get-theirs', 'patch-theirs'):
            method = 'GET' if operation == 'get-theirs' else 'PATCH'
            for path in (f'{base}/sessions/{theirs}',
                         f'/v1/sessions/{theirs}'):
                resp = keystone_api.request(
                    method, path, account=account, headers=headers,
                    json={'description': 'mine'})
                expected = {404} if caller == 'member' or method == 'GET' \
                    else {403}
                assert resp.status_code in expected, resp.text
        elif operation == 'foreign-url':
            resp = keystone_api.request(
                'GET', f'/v2/{other.project_id}/sessions/{theirs}',
                account=account, headers=headers)
            assert resp.status_code == 403, resp.text
        else:
            resp = keystone_api.request(
                'GET', base + '/jobs/?all_projects=true', account=account,
                headers=headers)
            assert resp.status_code == 403, resp.text

    check()
    # the other project's session was never changed
    resp = keystone_api.request(
        'GET', f'/v2/{other.project_id}/sessions/{theirs}', account=other)
    assert resp.status_code == 200
    assert resp.json()['_version'] == 1
    assert resp.json()['description'] == 'theirs'
    assert json.dumps(resp.json()).count(member.user_id) == 0
