"""Sessions: jobs on several hosts started together (spec §3.1, §3.2).

``start`` and ``end`` are pure functions of the stored session and the
clock; the manager runs them inside one storage transaction, so two nodes
starting the same run can never both bump the tag (spec D8).
"""

import datetime
import re
from collections.abc import Callable
from typing import Any

from freezer_api.core import base
from freezer_api.core import jobs as jobs_rules
from freezer_api.core import schedule as run_times
from freezer_api.core import schemas
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import NotFound
from freezer_api.core.errors import UnknownAction
from freezer_api.core.merge import deep_merge
from freezer_api.core.merge import json_copy

ACTIONS = ('start', 'end')
END_RESULTS = ('success', 'fail', 'aborted')
DEFAULT_HOLD_OFF = 30

SESSION_SERVER_FIELDS = ('session_id', 'jobs') + base.SERVER_FIELDS

NEW_SESSION_STATE = {
    'session_tag': 0,
    'description': '',
    'hold_off': DEFAULT_HOLD_OFF,
    'status': 'active',
    'result': '',
    'time_start': -1,
    'time_end': -1,
    # upstream's defaults: shown, though no run maintains them
    'time_started': -1,
    'time_ended': -1,
    'last_start': '',
}

# What a member job's entry in ``jobs`` holds before its first run.
JOB_ENTRY_DEFAULTS = {'status': '', 'result': '', 'time_started': -1,
                      'time_ended': -1}


def with_defaults(doc: dict) -> dict:
    """A session as it is shown: upstream's defaults where unset (for
    sessions stored before they were filled in)."""
    jobs = doc.get('jobs')
    if all(key in doc for key in NEW_SESSION_STATE) and (
            not isinstance(jobs, dict) or all(
                isinstance(entry, dict) and all(
                    key in entry for key in JOB_ENTRY_DEFAULTS)
                for entry in jobs.values())):
        return doc
    shown = {**NEW_SESSION_STATE, **doc}
    if isinstance(jobs, dict):
        shown['jobs'] = {
            job_id: ({**JOB_ENTRY_DEFAULTS, **entry}
                     if isinstance(entry, dict) else entry)
            for job_id, entry in jobs.items()}
    return shown


def session_document(body: dict, session_id: str, user_id: str,
                     project_id: str, jobs=None) -> dict:
    """The stored session made of a valid ``body`` (create, replace).

    The server sets the id, the owner and the job list (kept by the
    job routes, so a replace keeps it); ``NEW_SESSION_STATE`` fills what
    the body leaves out.
    """
    return {**NEW_SESSION_STATE, **body, 'jobs': {} if jobs is None else jobs,
            'session_id': session_id, 'user_id': user_id,
            'project_id': project_id}


def _window_open(session, now):
    """Whether the hold-off window of the last run start is open.

    A ``hold_off`` of 0 or less means no window (upstream allowed any
    integer).
    """
    time_start = session.get('time_start', -1)
    hold_off = session.get('hold_off', DEFAULT_HOLD_OFF)
    return (isinstance(time_start, int) and time_start >= 0
            and hold_off > 0 and now - time_start <= hold_off)


def _member(session, job_id):
    jobs = session.get('jobs') or {}
    if job_id not in jobs:
        raise InvalidInput('job_id not found in session')
    return jobs


def _running_entry(entry, tag, now):
    return {**entry, 'status': 'running', 'result': '',
            'time_started': now, 'time_ended': -1, 'session_tag': tag}


def start(session: dict, job_id: str, tag: int, now: int):
    """Decide a ``start`` request.

    Returns ``(new_session or None, result, session_tag)``. A tag equal to
    the session's opens a new run once the hold-off window has passed; a
    lower tag joins the run opened less than ``hold_off`` seconds ago.
    """
    jobs = _member(session, job_id)
    current = session.get('session_tag', 0)
    if tag > current:
        raise InvalidInput(f'requested tag value too high. Session Tag: '
                           f'{current} Job Tag: {tag}')
    in_window = _window_open(session, now)
    if in_window and tag == current:
        return None, 'hold-off', current
    if not in_window and tag < current:
        return None, 'out-of-sync', current
    jobs = dict(jobs)
    if in_window:
        # a late node joins the run another node opened moments ago
        jobs[job_id] = _running_entry(jobs[job_id], current, now)
        return _settle({**session, 'jobs': jobs}, now), 'success', current
    new_tag = current + 1
    jobs[job_id] = _running_entry(jobs[job_id], new_tag, now)
    started = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return ({**session, 'jobs': jobs, 'session_tag': new_tag,
             'time_start': now, 'time_end': -1, 'status': 'running',
             'result': '',
             'last_start': started.strftime('%Y-%m-%dT%H:%M:%SZ')},
            'success', new_tag)


def run_result(session: dict, now: int):
    """Aggregate the jobs of the current run: fail, success or None.

    Only jobs that started in this run count (spec D9). The run succeeds
    once all of them succeeded and either every member job took part or
    the hold-off window for late joiners has closed.
    """
    tag = session.get('session_tag', 0)
    jobs = session.get('jobs') or {}
    run = [entry for entry in jobs.values()
           if entry.get('session_tag') == tag]
    if any(entry.get('status') == 'completed'
           and entry.get('result') in ('fail', 'aborted') for entry in run):
        return 'fail'
    if not run or any(entry.get('status') != 'completed' for entry in run):
        return None
    if len(run) < len(jobs) and _window_open(session, now):
        return None
    return 'success'


def end(session: dict, job_id: str, tag: int, result: str, now: int):
    """Decide an ``end`` request; returns like ``start``."""
    jobs = _member(session, job_id)
    if result not in END_RESULTS:
        raise InvalidInput(
            f'result must be one of {", ".join(END_RESULTS)}')
    current = session.get('session_tag', 0)
    if tag != current:
        return None, 'out-of-sync', current
    jobs = dict(jobs)
    jobs[job_id] = {**jobs[job_id], 'status': 'completed',
                    'result': result, 'time_ended': now,
                    'session_tag': current}
    return _settle({**session, 'jobs': jobs}, now), 'success', current


def _settle(session, now):
    """Make the session's status and result the aggregate of its run.

    NOTE: a run may change after it completed: a late node joins within
    the hold-off window (the run is open again until it ends), or a node
    reports its end again with another result.
    """
    outcome = run_result(session, now)
    if outcome is None:
        if session.get('status') == 'completed':
            session.update(status='running', result='', time_end=-1)
    elif (session.get('status') != 'completed'
          or session.get('result') != outcome):
        session.update(status='completed', result=outcome, time_end=now)
    return session


def _int_tag(value):
    if isinstance(value, bool):
        raise InvalidInput('current_tag must be an integer')
    if isinstance(value, str) and re.fullmatch(r'\s*[0-9]{1,18}\s*', value):
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise InvalidInput('current_tag must be an integer of 0 or more')
    return value


def parse_action(body):
    """Return ``(action, job_id, tag, params)`` of an action request."""
    if not isinstance(body, dict) or not body:
        raise InvalidInput('Bad action request format')
    action, params = next(iter(body.items()))
    if not isinstance(params, dict) or not params:
        raise InvalidInput('Bad action request format')
    if action not in ACTIONS:
        raise UnknownAction(
            f'Unknown session action {str(action)[:80]!r}: use start or end')
    job_id = params.get('job_id')
    if not isinstance(job_id, str) or not job_id:
        raise InvalidInput('job_id is required')
    if 'current_tag' not in params:
        raise InvalidInput('current_tag is required')
    return action, job_id, _int_tag(params['current_tag']), params


class SessionManager(base.Manager):
    kind = 'sessions'
    not_found = 'No session found with ID {}'
    # the run ledger (issue 15), set by core.service
    ledger: Any = None

    def _body(self, body):
        return base.without(base.require_object(body, 'session'),
                            SESSION_SERVER_FIELDS)

    def create(self, caller: base.Caller, body) -> str:
        body = self._body(body)
        schemas.validate(schemas.SESSION, body)
        run_times.check_time_zone(body.get('schedule'))
        session_id = self.new_id()
        owner = caller.owner
        doc = session_document(body, session_id, owner.user_id,
                               owner.project_id)
        self.storage.create(self.kind, session_id, owner.project_id,
                            owner.user_id, self.created_at(), doc)
        return session_id

    def replace(self, caller: base.Caller, session_id, body,
                expected_version=None):
        """Create or replace a session; its job membership is kept."""
        base.check_id(session_id, 'session_id')
        body = self._body(body)
        schemas.validate(schemas.SESSION, body)
        run_times.check_time_zone(body.get('schedule'))
        owner = caller.owner

        def new_doc(txn):
            return session_document(body, session_id, owner.user_id,
                                    owner.project_id)

        def replacement(txn, record):
            return session_document(body, session_id, record.user_id,
                                    record.project_id,
                                    jobs=record.doc.get('jobs', {}))

        return self.upsert(caller, session_id, new_doc, replacement,
                           expected_version)

    def update(self, caller, session_id, body, expected_version=None):
        patch = self._body(body)
        schemas.validate(schemas.SESSION_PATCH, patch)
        run_times.check_time_zone(patch.get('schedule'))
        return self.merge(caller, session_id, patch, schemas.SESSION,
                          expected_version)

    def delete(self, caller, session_id):
        """Delete the session and detach its jobs (spec D10)."""
        scope = caller.scope

        def write(txn):
            record = self.load(txn, scope, session_id)
            for job_id in record.doc.get('jobs') or {}:
                job = txn.get('jobs', job_id, base.project_scope(scope))
                if job is not None and job.doc.get(
                        'session_id') == session_id:
                    txn.update(job, jobs_rules.detach_from_session(job.doc))
                    self._job_changed(job)
            txn.delete(record)

        self.storage.atomic(write)

    def action(self, caller, session_id, body) -> dict:
        """Run a start or end request; return the response document."""
        action, job_id, tag, params = parse_action(body)
        rule: Callable[..., tuple] = start if action == 'start' else end
        args = (tag,) if action == 'start' else (tag, params.get('result'))

        def write(txn):
            record = self.load(txn, caller.scope, session_id)
            doc, result, new_tag = rule(record.doc, job_id, *args,
                                        self.now())
            if doc is not None:
                txn.update(record, doc)
                self._report_run(txn, caller, session_id, job_id, action,
                                 new_tag, params.get('result'))
            return {'result': result, 'session_tag': new_tag}

        return self.storage.atomic(write)

    def _job(self, txn, scope, job_id):
        job = txn.get('jobs', job_id, scope)
        if job is None:
            raise NotFound(f'No job found with ID {job_id}')
        return job

    def add_job(self, caller, session_id, job_id):
        """Make the job a member; it inherits the session schedule."""
        scope = caller.scope

        def write(txn):
            session = self.load(txn, scope, session_id)
            job = self._job(txn, scope, job_id)
            previous = job.doc.get('session_id')
            if previous and previous != session_id:
                old = txn.get(self.kind, previous, base.project_scope(scope))
                remaining = (None if old is None else
                             jobs_rules.session_without_job(old.doc, job_id))
                if remaining is not None:
                    txn.update(old, remaining)
            schedule = job.doc.get('job_schedule') or {}
            jobs = dict(session.doc.get('jobs') or {})
            if job_id not in jobs:
                jobs[job_id] = {
                    'client_id': job.doc.get('client_id', ''),
                    **{key: schedule.get(key, default) for key, default
                       in JOB_ENTRY_DEFAULTS.items()},
                }
                txn.update(session, {**session.doc, 'jobs': jobs})
            job_doc = json_copy(job.doc)
            job_doc.update(
                session_id=session_id,
                session_tag=session.doc.get('session_tag', 0),
                job_schedule=deep_merge(schedule,
                                        session.doc.get('schedule') or {}))
            if job_doc != job.doc:
                txn.update(job, job_doc)
                self._job_changed(job)

        self.storage.atomic(write)

    def remove_job(self, caller, session_id, job_id):
        """Take the job out of the session; it is asked to stop."""
        scope = caller.scope

        def write(txn):
            session = self.load(txn, scope, session_id)
            job = txn.get('jobs', job_id, scope)
            remaining = jobs_rules.session_without_job(session.doc, job_id)
            if remaining is None and job is None:
                raise NotFound(f'No job found with ID {job_id}')
            if remaining is not None:
                txn.update(session, remaining)
            if job is not None and job.doc.get('session_id') == session_id:
                txn.update(job, jobs_rules.detach_from_session(job.doc))
                self._job_changed(job)

        self.storage.atomic(write)

    def _job_changed(self, job):
        """A job joined or left a session: its expected runs change."""
        if self.ledger is not None:
            self.ledger.job_changed(job.project_id, job.id)

    def _report_run(self, txn, caller, session_id, job_id, action, tag,
                    result):
        """Name the session run on the job's run record (issue 15)."""
        if self.ledger is None:
            return
        job = txn.get('jobs', job_id, base.project_scope(caller.scope))
        self.ledger.session_action(txn, job and job.doc, session_id,
                                   action, tag, result)
