"""Coverage (issue 15, point 5): per client and per job, is there a recent
good backup, and what went wrong lately.

It is read from one summary per job (``core.health.summary``, kind
``job_health``), which the ledger keeps with every run it starts or ends.
A job whose summary is due (a missed run may have become due, its running
run may be overdue, its schedule changed, or it has none) is settled
first (``RunManager.refresh``: overdue runs end as lost, missed runs are
written), so the answer and the runs lists agree. ``HealthSweeper`` does
the same in the background, so that a reader seldom finds a job due.
"""

import collections
import dataclasses
import logging
import os
import random
import threading

from freezer_api.core import base
from freezer_api.core import health
from freezer_api.core import search
from freezer_api.core.errors import InvalidInput
from freezer_api.core.runs import every
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import Scope
from freezer_api.storage.query import Query
from freezer_api.storage.query import Term

LOG = logging.getLogger(__name__)

FILTERS = ('client_id', 'job_id')


def check_filter(name, value):
    if value is None:
        return None
    if not value or len(value) > 255:
        raise InvalidInput(f'{name} must be a non-empty string of at most '
                           '255 characters')
    return value


def _age(now, moment):
    return None if moment is None else max(0, int(now - moment))


class CoverageManager(base.Manager):

    def __init__(self, storage, runs, presence, **kwargs):
        super().__init__(storage, **kwargs)
        self.runs = runs
        self.presence = presence

    def coverage(self, caller: base.Caller, search_doc=None,
                 page: base.Page = base.Page(limit=base.MAX_LIMIT),
                 breached_only=False, client_id=None, job_id=None) -> dict:
        """The coverage of the jobs ``search_doc`` and the filters
        choose; ``page`` pages the jobs listed (the summary and the
        clients count them all)."""
        check_filter('client_id', client_id)
        check_filter('job_id', job_id)
        query = search.parse(search_doc, 'jobs')
        now = self.now()
        terms = list(query.match)
        if client_id is not None:
            terms.append(Term('client_id', client_id))
        if job_id is not None:
            terms.append(Term('job_id', job_id))
        scope = caller.scope
        presences = self.presence.of_project(scope)
        offline_after = self.runs.settings.offline_after
        found = [job for job in every(
            self.storage, 'jobs', scope,
            dataclasses.replace(query, match=tuple(terms)))
            if job_id is None or job.id == job_id]
        summaries = self._settled(scope, found, presences, job_id)
        # PERF: every job is counted, only the listed page is described
        states = [(job, self._state(job, summaries[job.id], now))
                  for job in found]
        jobs = [state for _, state in states]
        clients = self._clients(scope, jobs, presences, offline_after, now,
                                client_id)
        if breached_only:
            states = [(job, state) for job, state in states
                      if state['breached']]
            jobs = [state for _, state in states]
            clients = [client for client in clients if client['breached']]
        listed = [self._entry(job, summaries[job.id], state, presences,
                              offline_after, now)
                  for job, state in states[page.offset:
                                           page.offset + page.limit]]
        return {
            'generated_at': health.iso(now),
            'summary': {
                'jobs': len(jobs),
                'breached': sum(1 for job in jobs if job['breached']),
                'stale': sum(1 for job in jobs if job['stale']),
                'missed_7d': sum(job['missed_7d'] for job in jobs),
                'clients_offline': sum(1 for c in clients if c['offline']),
            },
            'clients': clients,
            'jobs': listed,
        }

    def figures(self, scope) -> dict:
        """The backup-health figures of ``scope`` by project, as the
        Prometheus families of ``freezer_api.metrics.figures`` name them:
        runs of the last days by result, missed runs by reason, stale
        runs, RPO breaches and offline clients."""
        now = self.now()
        presences = self.presence.of_project(scope)
        offline_after = self.runs.settings.offline_after
        runs: collections.Counter = collections.Counter()
        missed: collections.Counter = collections.Counter()
        stale: collections.Counter = collections.Counter()
        breached: collections.Counter = collections.Counter()
        jobs = []
        found = list(every(self.storage, 'jobs', scope, Query()))
        summaries = self._settled(scope, found, presences)
        for job in found:
            summary = summaries[job.id]
            entry = self._state(job, summary, now)
            jobs.append(entry)
            project = job.project_id
            stale[project] += entry['stale']
            breached[project] += entry['breached']
            for code, count in health.recent_counts(summary, now).items():
                status, result, reason = health.meaning(code)
                if status == health.MISSED:
                    missed[project, reason] += count
                elif result:
                    runs[project, result] += count
        offline: collections.Counter = collections.Counter()
        for client in self._clients(scope, jobs, presences, offline_after,
                                    now, None):
            offline[client['project_id']] += bool(client['offline'])
        projects = sorted({job['project_id'] for job in jobs} | set(offline))
        return {
            'freezer_backup_runs': [
                ({'project': p, 'result': r}, n)
                for (p, r), n in sorted(runs.items())],
            'freezer_backup_missed_runs': [
                ({'project': p, 'reason': r}, n)
                for (p, r), n in sorted(missed.items())],
            'freezer_backup_stale_runs': [
                ({'project': p}, stale[p]) for p in projects],
            'freezer_backup_rpo_breaches': [
                ({'project': p}, breached[p]) for p in projects],
            'freezer_backup_clients_offline': [
                ({'project': p}, offline[p]) for p in projects],
        }

    def _settled(self, scope, jobs, presences, job_id=None) -> dict:
        """The summary of each of ``jobs``, by job id, each settled first
        if it is due."""
        query = Query(match=(Term('job_id', job_id),)
                      if job_id is not None else ())
        summaries = self.runs.summaries(scope, query)
        self._refresh_due(jobs, summaries, presences)
        return summaries

    def _refresh_due(self, jobs, summaries, presences) -> int:
        """Settle the jobs whose summary (in ``summaries``, replaced) is
        due; return how many."""
        now = self.now()
        settled = 0
        for job in jobs:
            if health.is_due(summaries.get(job.id), job.doc, now):
                presence = presences.get(
                    (job.project_id, job.doc.get('client_id', '')))
                summaries[job.id] = self.runs.refresh(job, presence=presence)
                settled += 1
        return settled

    def settle_due(self, scope) -> int:
        """Settle every job of ``scope`` whose summary is due, and remove
        the summaries of jobs that are gone; return how many were
        settled (the background sweep's full pass: it reads every job
        and every summary)."""
        jobs = list(every(self.storage, 'jobs', scope, Query()))
        summaries = self.runs.summaries(scope)
        settled = self._refresh_due(jobs, summaries,
                                    self.presence.of_project(scope))
        alive = {job.id for job in jobs}
        for job_id, summary in summaries.items():
            if job_id not in alive:
                self.runs.forget(summary.get('project_id'), job_id)
        return settled

    def settle_changed(self, scope, changed) -> int:
        """The sweep's quick pass: settle the jobs whose summary has
        fallen due (found by its ``settle_due``, not by reading every
        summary) and the jobs of ``changed`` (``(project_id, job_id)``
        written by this process since its last sweep, whose schedule may
        have changed while their summary says nothing is due); remove the
        summaries of those that are gone. Return how many were settled.

        PERF: a fleet's summaries fall due about once per run and job, so
        a pass reads a small share of the jobs where ``settle_due`` reads
        them all (88 000 jobs and summaries took about 2 s of a process's
        CPU a minute). A job changed by another process, or before this
        one started, waits for a full pass or a reader: a coverage or
        runs read settles every job it reads that is due.
        """
        now = self.now()
        due = self.runs.due_summaries(scope, now)
        wanted = {(summary.get('project_id', ''), job_id)
                  for job_id, summary in due.items()}
        wanted.update(changed)
        settled = 0
        for project_id, job_id in sorted(wanted):
            if scope.project_id is not None and \
                    project_id != scope.project_id:
                continue
            try:
                job = self.storage.get('jobs', job_id, Scope(project_id))
            except storage_errors.NotFound:
                self.runs.forget(project_id, job_id)
                continue
            summary = due.get(job_id)
            if summary is None or summary.get('project_id') != project_id:
                summary = self.runs.summary_of(project_id, job_id)
            if health.is_due(summary, job.doc, now):
                self.runs.refresh(job)
                settled += 1
        return settled

    def _state(self, job, summary, now) -> dict:
        """What coverage counts of a job (and announces: an RPO breach)."""
        doc = job.doc
        client = doc.get('client_id', '')
        lease = self.runs.lease(doc)
        success = summary.get('last_success')
        rpo, rpo_source = health.rpo(doc, summary.get('interval'))
        created = (doc.get('job_schedule') or {}).get('time_created')
        created = created if isinstance(created, int) else 0
        success_end = success.get('end') if success else None
        current = None
        start = health.reported_start(doc)
        if start is not None:
            known = summary.get('current')
            if known and known.get('run_id') == health.run_id(job.id,
                                                              start):
                current = known
        breached = health.breached(rpo, success_end, created, now)
        if breached:
            # one occurrence per good run (or none) the breach follows
            self.runs.announce('rpo_breached', job.project_id, job.id,
                               success_end or 'never',
                               {'job_id': job.id, 'client_id': client,
                                'rpo': rpo, 'last_success_end': success_end})
        counts = health.recent_counts(summary, now)
        return {
            'job_id': job.id, 'client_id': client,
            'project_id': job.project_id, 'breached': breached,
            'stale': health.is_stale(doc, current, lease, now),
            'missed_7d': sum(counts.get(code, 0)
                             for code in health.MISSED_CODES),
            'lost_7d': counts.get(health.LOST_CODE, 0),
            'rpo': rpo, 'rpo_source': rpo_source, 'run_lease': lease,
        }

    def _entry(self, job, summary, state, presences, offline_after,
               now) -> dict:
        """The description of a listed job."""
        doc = job.doc
        presence = presences.get((job.project_id, state['client_id']))
        last_seen = presence.get('last_seen') if presence else None
        success = summary.get('last_success')
        success_end = success.get('end') if success else None
        next_run = health.next_run(summary, now)
        if next_run is False:
            upcoming = self.runs.upcoming(doc, now)
            next_run = upcoming[0][0] if upcoming else None
        return {
            'job_id': job.id,
            'client_id': state['client_id'],
            'project_id': job.project_id,
            'description': doc.get('description', ''),
            'status': (doc.get('job_schedule') or {}).get('status', ''),
            'last_success': None if success is None else {
                'run_id': success.get('run_id'),
                'end': health.iso(success_end),
                'age': _age(now, success_end),
                'backups': success.get('backups', []),
            },
            'rpo': state['rpo'],
            'rpo_source': state['rpo_source'],
            'breached': state['breached'],
            'missed_7d': state['missed_7d'],
            'lost_7d': state['lost_7d'],
            'stale': state['stale'],
            'run_lease': state['run_lease'],
            'next_run': next_run,
            'client_last_seen': health.iso(last_seen),
            'client_offline': health.offline_at(now, presence,
                                                offline_after),
        }

    def _clients(self, scope, jobs, presences, offline_after, now,
                 client_id):
        """One entry per registered client (and per client a job names)."""
        by_client: dict[tuple[str, str], list[dict]] = {}
        for job in jobs:
            by_client.setdefault((job['project_id'], job['client_id']),
                                 []).append(job)
        query = Query(match=(Term('client_id', client_id),)
                      if client_id is not None else ())
        for record in every(self.storage, 'clients', scope, query):
            by_client.setdefault((record.project_id, record.id), [])
        clients = []
        for (project_id, name), its_jobs in sorted(by_client.items()):
            presence = presences.get((project_id, name))
            last_seen = presence.get('last_seen') if presence else None
            offline = health.offline_at(now, presence, offline_after)
            if offline:
                # one occurrence per silence: since the last poll seen
                self.runs.announce('client_offline', project_id, name,
                                   last_seen or 'never',
                                   {'client_id': name,
                                    'last_seen': last_seen})
            clients.append({
                'client_id': name,
                'project_id': project_id,
                'last_seen': health.iso(last_seen),
                'last_seen_age': _age(now, last_seen),
                'offline': offline,
                'jobs': len(its_jobs),
                'breached': sum(1 for job in its_jobs if job['breached']),
                'stale': sum(1 for job in its_jobs if job['stale']),
                'missed_7d': sum(job['missed_7d'] for job in its_jobs),
            })
        return clients


class HealthSweeper:
    """The background sweep of one API process: every ``interval`` seconds
    (with jitter, so that processes do not sweep together), settle every
    due job of every project (missed runs written and announced, overdue
    runs lost, summaries current) and remove run records past their
    retention. Started by the first request a process serves (so after a
    fork), stopped with the process.

    A sweep is quick (``CoverageManager.settle_changed``: the summaries
    due, and the jobs this process changed) except the first of a
    process and every ``FULL_EVERY``-th, which read every job
    (``settle_due``): they find the summaries of deleted jobs, new jobs
    and schedules changed by other processes or by hand in the store.
    """

    FULL_EVERY = 10

    def __init__(self, coverage: CoverageManager, interval: float,
                 ledger=None):
        """``ledger``: the ``core.runs.RunLedger`` whose changed jobs the
        quick sweeps look at (without one, every sweep is full)."""
        self.coverage = coverage
        self.interval = interval
        self.ledger = ledger
        self._sweeps = 0
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # NOTE: not the random module's shared generator: a thread drawing
        # from it changes what other code (and Hypothesis) draws
        self._jitter = random.SystemRandom()

    def ensure_running(self) -> None:
        if self.interval <= 0 or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._sweeps = 0
            self._stop = threading.Event()
            threading.Thread(target=self._run, name='health-sweep',
                             daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def sweep(self, full: bool = True) -> dict:
        """One sweep: ``{'settled': jobs, 'purged': run records}``.
        ``full=False``: the quick one, unless this process's changes were
        too many to remember."""
        changed, overflow = (self.ledger.take_changed()
                             if self.ledger is not None else (set(), True))
        scope = base.Scope(None)
        if full or overflow:
            settled = self.coverage.settle_due(scope)
        else:
            settled = self.coverage.settle_changed(scope, changed)
        purged = self.coverage.runs.purge_expired()
        return {'settled': settled, 'purged': purged}

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval * self._jitter.uniform(0.5, 1.0)):
            full = self._sweeps % self.FULL_EVERY == 0
            self._sweeps += 1
            try:
                self.sweep(full=full)
            except Exception:  # noqa: BLE001 - the next sweep tries again
                LOG.exception('The backup-health sweep failed')
