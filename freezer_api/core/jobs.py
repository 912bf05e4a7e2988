"""Jobs: what a scheduler runs and when (spec §2.3, §3.3, D11)."""

from typing import Any

from freezer_api.core import base
from freezer_api.core import health
from freezer_api.core import schedule as run_times
from freezer_api.core import schemas
from freezer_api.core.actions import ActionManager
from freezer_api.core.clients import ClientManager
from freezer_api.core.clients import is_central
from freezer_api.core.clients import with_capabilities
from freezer_api.core.errors import Forbidden
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import Unavailable
from freezer_api.core.errors import Unprocessable
from freezer_api.core.merge import json_copy
from freezer_api.identity import errors as identity_errors
from freezer_api.storage.base import Scope

EVENTS = ('start', 'stop', 'abort')

# NOTE: session_id is maintained only by the session routes so that a job
# and its session always point at each other; session_tag stays writable
# because the scheduler reports the tag it adopted after a session start.
# user_credentials (the trust of a job for a central scheduler) is made by
# the server only: a trust id sent by a caller could be someone else's.
JOB_SERVER_FIELDS = ('job_id', 'session_id',
                     'user_credentials') + base.SERVER_FIELDS

# freezer_action field -> client capability list that must contain it.
CAPABILITIES = (('action', 'supported_actions'),
                ('mode', 'supported_modes'),
                ('storage', 'supported_storages'),
                ('engine', 'supported_engines'))

# The policy rule a job needs to run ``exec`` on a central scheduler, the
# host that holds the service user's credentials (default: admins only).
CENTRAL_EXEC_RULE = 'jobs:create_central_exec'


def expand_action_defaults(body: dict) -> dict:
    """Apply and drop ``action_defaults`` (never stored).

    Each key fills the same key of every ``freezer_action`` where it is
    missing or null.
    """
    defaults = body.pop('action_defaults', None)
    if defaults is None:
        return body
    if not isinstance(defaults, dict):
        raise InvalidInput('action_defaults must be an object')
    for entry in body.get('job_actions') or []:
        action = entry.get('freezer_action') if isinstance(
            entry, dict) else None
        if isinstance(action, dict):
            for key, value in defaults.items():
                if action.get(key) is None:
                    action[key] = json_copy(value)
    return body


def prepare(body) -> dict:
    """Copy a job body, expand its defaults and drop server fields."""
    body = json_copy(base.require_object(body, 'job'))
    return base.without(expand_action_defaults(body), JOB_SERVER_FIELDS)


def check_capabilities(client_doc, client_id, job_actions):
    """Raise Unprocessable unless the client can run every action.

    A client registered without a ``supported_*`` list accepts any value
    of that field.
    """
    if client_doc is None:
        raise Unprocessable(f'Client {client_id} is not registered')
    info = with_capabilities(client_doc).get('client', {})
    for entry in job_actions:
        action = entry['freezer_action']
        for field, capability in CAPABILITIES:
            value = action.get(field)
            supported = info.get(capability)
            if value is not None and supported is not None and (
                    value not in supported):
                raise Unprocessable(
                    f'Client does not support {field}: {value}')


def check_central_exec(caller: base.Caller, job_actions):
    """Raise Forbidden if a job for a central scheduler runs ``exec`` and
    policy does not allow the caller that (spec D11, issue 13)."""
    if any(entry['freezer_action'].get('action') == 'exec'
           for entry in job_actions) and not caller.allows(
               CENTRAL_EXEC_RULE):
        raise Forbidden(
            'Running exec actions on a central scheduler is not allowed '
            f'for you (policy rule {CENTRAL_EXEC_RULE}, admins only by '
            'default)')


def apply_event(doc: dict, event: str):
    """Return ``(new_doc or None, result)`` for a job event (spec §3.3)."""
    if event not in EVENTS:
        raise InvalidInput(
            f'Bad event {str(event)[:80]!r}: use one of {", ".join(EVENTS)}')
    schedule = dict(doc.get('job_schedule') or {})
    if schedule.get('event') == event:
        return None, f'{event} already requested'
    schedule['event'] = event
    if event == 'start':
        schedule.update(status='', result='')
    return {**doc, 'job_schedule': schedule}, 'success'


def job_document(body: dict, job_id: str, user_id: str, project_id: str,
                 session_id: str = '', session_tag=0) -> dict:
    """The stored job made of a prepared, valid ``body`` (create, replace).

    The server sets the id, the owner and the session link (kept by the
    session routes); ``description`` and ``session_tag`` have defaults.
    """
    return {'description': '', 'session_tag': session_tag,
            **json_copy(body), 'job_id': job_id,
            'session_id': session_id, 'user_id': user_id,
            'project_id': project_id}


def start_schedule(doc: dict, now: int, keep_given: bool) -> dict:
    """Set the run times of a new job: created ``now``, never run.

    On create the server forces them (spec §2.3). A replace of an absent
    id keeps the times the client sends (``keep_given``): a replace stores
    the body as given (spec §2.3, step 4, sets only the id and owner, as
    upstream's POST /v1/jobs/{id} does), so a scheduler that re-sends a job
    it knows keeps its creation time; missing times get the defaults.
    """
    times = {'time_created': now, 'time_started': -1, 'time_ended': -1}
    schedule = doc['job_schedule']
    doc['job_schedule'] = ({**times, **schedule} if keep_given
                           else {**schedule, **times})
    return doc


def session_without_job(session: dict, job_id: str) -> dict | None:
    """The session document without ``job_id`` in its job list, or None
    when the job is not in it (nothing to write)."""
    jobs = session.get('jobs') or {}
    if not isinstance(jobs, dict) or job_id not in jobs:
        return None
    return {**session, 'jobs': {other: entry for other, entry in jobs.items()
                                if other != job_id}}


def detach_from_session(doc: dict) -> dict:
    """The job as it is once out of its session (spec D10)."""
    schedule = dict(doc.get('job_schedule') or {})
    schedule['event'] = 'stop'
    return {**doc, 'session_id': '', 'session_tag': 0,
            'job_schedule': schedule}


class JobManager(base.Manager):
    kind = 'jobs'
    not_found = 'No job found with ID {}'
    # Backup health (issue 15), set by core.service: the run ledger
    # (core.runs.RunLedger) and the poll tracker (core.presence).
    ledger: Any = None
    presence: Any = None

    def __init__(self, storage, actions: ActionManager,
                 clients: ClientManager, trusts=None,
                 default_timezone='UTC', **kwargs):
        """``trusts``, when central scheduling is on, has
        ``trust_id(token, user_id, project_id)`` (freezer_api.identity).
        ``default_timezone``: the IANA zone of schedules naming none."""
        super().__init__(storage, **kwargs)
        try:
            self.default_timezone = run_times.time_zone(default_timezone)
        except InvalidInput:
            raise ValueError(f'default_schedule_timezone: unknown time zone '
                             f'{default_timezone!r}')
        self.actions = actions
        self.clients = clients
        self.trusts = trusts

    def _finish(self, txn, caller, doc):
        """Fill in referenced actions, check the client, keep the job's
        actions, attach a trust."""
        referenced = self.actions.resolve_references(txn, caller,
                                                     doc['job_actions'])
        client = txn.get('clients', doc['client_id'],
                         Scope(doc['project_id']))
        if client is None:
            client = self.clients.find_central(doc['client_id'])
        check_capabilities(client and client.doc, doc['client_id'],
                           doc['job_actions'])
        if is_central(client):
            check_central_exec(caller, doc['job_actions'])
        self.actions.keep_job_actions(txn, caller, doc['job_actions'],
                                      referenced)
        if is_central(client):
            doc['user_credentials'] = {
                'trust_id': self._trust_id(caller, doc['project_id'])}
        else:
            doc.pop('user_credentials', None)
        return doc

    def _trust_id(self, caller, project_id):
        """The trust the central scheduler runs this caller's jobs with.

        NOTE: asked inside the write transaction; the trust source keeps
        what it found, so retried transactions do not ask Keystone again.
        """
        if self.trusts is None:
            raise Unprocessable('Central schedulers are not enabled on this '
                                'service')
        try:
            return self.trusts.trust_id(caller.auth_token,
                                        caller.owner.user_id, project_id)
        except identity_errors.Unavailable as exc:
            raise Unavailable(str(exc))
        except identity_errors.Refused as exc:
            raise Forbidden(str(exc))

    def create(self, caller: base.Caller, body) -> str:
        body = prepare(body)
        body.setdefault('job_schedule', {})
        schemas.validate(schemas.JOB, body)
        run_times.check_time_zone(body['job_schedule'])
        job_id = self.new_id()
        owner = caller.owner
        doc = start_schedule(
            job_document(body, job_id, owner.user_id, owner.project_id),
            self.now(), keep_given=False)

        def write(txn):
            stored = json_copy(doc)
            self._finish(txn, caller, stored)
            self._changed(owner.project_id, job_id)
            return txn.insert(self.kind, job_id, owner.project_id,
                              owner.user_id, self.created_at(), stored)

        self.storage.atomic(write)
        return job_id

    def replace(self, caller: base.Caller, job_id, body,
                expected_version=None):
        """Create or fully replace the job ``job_id``."""
        base.check_id(job_id, 'job_id')
        body = prepare(body)
        body.setdefault('job_schedule', {})
        schemas.validate(schemas.JOB, body)
        run_times.check_time_zone(body['job_schedule'])
        owner = caller.owner

        def new_doc(txn):
            doc = start_schedule(
                job_document(body, job_id, owner.user_id, owner.project_id),
                self.now(), keep_given=True)
            self._changed(owner.project_id, job_id)
            return self._finish(txn, caller, doc)

        def replacement(txn, record):
            old = record.doc
            doc = job_document(body, job_id, record.user_id,
                               record.project_id,
                               session_id=old.get('session_id', ''),
                               session_tag=old.get('session_tag', 0))
            self._changed(record.project_id, job_id)
            return self._report_run(txn, self._finish(txn, caller, doc))

        return self.upsert(caller, job_id, new_doc, replacement,
                           expected_version)

    def update(self, caller: base.Caller, job_id, body,
               expected_version=None):
        """Deep-merge ``body`` into the job (spec D6)."""
        patch = prepare(body)
        schemas.validate(schemas.JOB_PATCH, patch)
        run_times.check_time_zone(patch.get('job_schedule'))

        def finish(txn, doc, old):
            if 'job_actions' in patch or 'client_id' in patch:
                self._finish(txn, caller, doc)
            self._report_run(txn, doc)
            if health.patch_reschedules(patch, old, doc):
                self._changed(doc.get('project_id', ''), job_id)

        return self.merge(caller, job_id, patch, schemas.JOB,
                          expected_version, finish)

    def delete(self, caller, job_id):
        """Delete the job and take it out of its session (spec D10)."""

        def write(txn):
            record = self.load(txn, caller.scope, job_id)
            session_id = record.doc.get('session_id')
            if session_id:
                session = txn.get('sessions', session_id,
                                  base.project_scope(caller.scope))
                remaining = (None if session is None
                             else session_without_job(session.doc, job_id))
                if remaining is not None:
                    txn.update(session, remaining)
            self._changed(record.project_id, job_id)
            txn.delete(record)

        self.storage.atomic(write)

    def event(self, caller, job_id, body) -> str:
        """Request start, stop or abort; return the result text."""
        if not isinstance(body, dict) or not body:
            raise InvalidInput('Bad event request format: send an object '
                               'like {"start": null}')
        event = next(iter(body))
        if event not in EVENTS:
            apply_event({}, event)  # raises the explanatory error

        def write(txn):
            record = self.load(txn, caller.scope, job_id)
            doc, result = apply_event(record.doc, event)
            if doc is not None:
                txn.update(record, doc)
                if self.ledger is not None:
                    self.ledger.job_event(txn, record.doc, event)
                # a stop or abort holds the job, a start releases it
                self._changed(record.project_id, job_id)
            return result

        return self.storage.atomic(write)

    def next_runs(self, caller, job_id, count=run_times.DEFAULT_COUNT):
        """The job's next ``count`` runs as freezer-scheduler computes
        them (core/schedule.py)."""
        run_times.check_count(count)
        record = self.get(caller, job_id)
        return run_times.job_schedule(record.doc, self.default_timezone,
                                      self.clock(), count)

    # -- backup health hooks (issue 15) -------------------------------------

    def _changed(self, project_id, job_id):
        """The job's expected runs may change with this write."""
        if self.ledger is not None:
            self.ledger.job_changed(project_id, job_id)

    def _report_run(self, txn, doc):
        """Start or end the job's run record with this write."""
        if self.ledger is not None:
            self.ledger.job_reported(txn, doc)
        return doc

    def list(self, caller, search_doc, page):
        records = super().list(caller, search_doc, page)
        if self.presence is not None:
            # a scheduler's poll: noted now, written later (core.presence)
            self.presence.polled(caller, search_doc)
        return records
