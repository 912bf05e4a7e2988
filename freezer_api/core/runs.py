"""The run ledger (issue 15, point 2): a record per run a scheduler
reports, kept in the store as kind ``runs`` (see ``core.health``).

The hooks run inside the transaction that applies the report, so a run
record and the job state it comes from are written together:

- ``job_reported``: a job written with ``status: running`` starts a run;
  one written back with a result and ``time_ended`` ends it (what
  freezer-scheduler PATCHes around every run);
- ``job_event``: start, stop and abort requests are noted on the running
  run;
- ``session_action``: a session start or end names the session and tag
  of the job's running run;
- ``backup_posted``: a backup whose metadata names a running job is
  linked to that run.

``RunManager`` reads the ledger: it ends overdue runs as lost and writes
missed runs (ids derived from the job and time, so several API processes
write each one once) before it answers.
"""

import collections
import dataclasses
import datetime
import logging
import threading
from typing import Any

from freezer_api.core import base
from freezer_api.core import health
from freezer_api.core import notify
from freezer_api.core import schedule as run_times
from freezer_api.core import search
from freezer_api.core.errors import NotFound
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import MAX_LIST_LIMIT
from freezer_api.storage.base import Scope
from freezer_api.storage.query import Query
from freezer_api.storage.query import Range
from freezer_api.storage.query import Term

KIND = 'runs'
# One summary per job (``core.health.summary``), id the job's id.
SUMMARY_KIND = 'job_health'
# A job reporting the end of a run the ledger never saw start (written
# before this release, or purged) gets a record if it ended this recently.
LATE_END = health.DAY
MAX_EVENTS = 20
MAX_BACKUPS = 100
# Jobs a process remembers as changed until its next sweep; past this,
# the next sweep reads every job instead (see ``RunLedger.job_changed``).
# Bounded also for a process whose sweep is off: about 1 MB at most.
MAX_CHANGED = 10_000


def every(storage, kind, scope, query=Query()):
    """Every document of ``kind`` in ``scope`` matching ``query``, page by
    page."""
    offset = 0
    while True:
        page = storage.list(kind, scope, query, MAX_LIST_LIMIT, offset)
        yield from page
        if len(page) < MAX_LIST_LIMIT:
            return
        offset += len(page)


# ``settle`` reads the client's presence itself unless given (even None).
UNREAD: Any = object()


@dataclasses.dataclass(frozen=True)
class HealthSettings:
    retention_days: int = 90
    default_lease: int = 6 * 3600
    missed_grace: int = 300
    missed_grace_percent: int = 10
    offline_after: int = 300


def _at(doc):
    """The time a record is listed by: its start, or its expected time."""
    start = doc.get('start', -1)
    return start if start > 0 else doc.get('expected_at', 0)


class RunLedger:
    """The hooks: each runs inside the caller's transaction."""

    def __init__(self, clock, settings: HealthSettings):
        self.clock = clock
        self.settings = settings
        self._changed: set[tuple[str, str]] = set()
        self._changed_overflow = False
        self._changed_lock = threading.Lock()

    def now(self) -> int:
        return int(self.clock())

    def job_changed(self, project_id: str, job_id: str) -> None:
        """Remember that this process wrote the job (created, replaced,
        changed, deleted, moved into or out of a session): its expected
        runs may have changed while its summary says nothing is due, so
        the next sweep of this process looks at it (``take_changed``).
        Noted inside the transaction: a change rolled back costs that
        sweep one needless look."""
        with self._changed_lock:
            if len(self._changed) >= MAX_CHANGED:
                self._changed_overflow = True
            else:
                self._changed.add((project_id, job_id))

    def take_changed(self) -> tuple[set[tuple[str, str]], bool]:
        """``(jobs, overflow)``: the ``(project_id, job_id)`` of the jobs
        changed since the last call, and whether some were not kept."""
        with self._changed_lock:
            changed, overflow = self._changed, self._changed_overflow
            self._changed, self._changed_overflow = set(), False
        return changed, overflow

    def _insert(self, txn, doc):
        doc['at'] = _at(doc)
        return txn.insert(KIND, doc['run_id'], doc['project_id'],
                          doc['user_id'], health.created_at(doc['at']), doc)

    def _note(self, txn, job_doc, run):
        """Note a run started or ended in the job's summary, in the same
        transaction (a summary not made yet is made due at once)."""
        lease = health.lease(job_doc, self.settings.default_lease)
        project = job_doc.get('project_id')
        record = txn.get(SUMMARY_KIND, job_doc['job_id'], Scope(project))
        if record is None:
            doc = health.noted(health.empty_summary(job_doc), run, lease)
            txn.insert(SUMMARY_KIND, job_doc['job_id'], project,
                       job_doc.get('user_id', ''), 0, doc)
        else:
            txn.update(record, health.noted(record.doc, run, lease))

    def job_reported(self, txn, job_doc: dict) -> None:
        """Start or end the run a job document reports."""
        project = Scope(job_doc.get('project_id'))
        now = self.now()
        start = health.reported_start(job_doc)
        if start is not None:
            run_id = health.run_id(job_doc['job_id'], start)
            record = txn.get(KIND, run_id, project)
            if record is None:
                run = health.new_run(job_doc, start, now)
                self._insert(txn, run)
                self._note(txn, job_doc, run)
            elif record.doc.get('status') == health.RUNNING and (
                    record.doc.get('last_report', 0) < now):
                txn.update(record, {**record.doc, 'last_report': now})
            return
        ended = health.reported_end(job_doc)
        if ended is None:
            return
        start, end, result = ended
        run_id = health.run_id(job_doc['job_id'], start)
        record = txn.get(KIND, run_id, project)
        if record is None:
            if now - end > LATE_END:
                return
            run = health.ended_run(health.new_run(job_doc, start, now),
                                   end, result, now)
            self._insert(txn, run)
            self._note(txn, job_doc, run)
        elif record.doc.get('status') in (health.RUNNING, health.LOST):
            run = health.ended_run(record.doc, end, result, now)
            txn.update(record, run)
            self._note(txn, job_doc, run)

    def _running(self, txn, job_doc):
        start = health.reported_start(job_doc)
        if start is None:
            return None
        record = txn.get(KIND, health.run_id(job_doc['job_id'], start),
                         Scope(job_doc.get('project_id')))
        if record is None or record.doc.get('status') != health.RUNNING:
            return None
        return record

    def job_event(self, txn, job_doc: dict, event: str) -> None:
        """Note an event requested while the job runs."""
        record = self._running(txn, job_doc)
        if record is None:
            return
        events = list(record.doc.get('events') or [])[-(MAX_EVENTS - 1):]
        events.append({'event': event, 'at': self.now()})
        txn.update(record, {**record.doc, 'events': events})

    def session_action(self, txn, job_doc: dict | None, session_id: str,
                       action: str, tag: int, result=None) -> None:
        """Name the session run of the job's running run."""
        if job_doc is None:
            return
        record = self._running(txn, job_doc)
        if record is None:
            return
        doc = {**record.doc, 'session_id': session_id, 'session_tag': tag,
               'last_report': max(self.now(),
                                  record.doc.get('last_report', 0))}
        if action == 'end' and result is not None:
            doc['session_result'] = result
        if doc != record.doc:
            txn.update(record, doc)

    def backup_posted(self, txn, job_doc: dict | None,
                      backup_id: str) -> None:
        """Link a backup to the run of the job that posted it."""
        if job_doc is None:
            return
        record = self._running(txn, job_doc)
        if record is None:
            return
        backups = list(record.doc.get('backups') or [])
        if backup_id in backups or len(backups) >= MAX_BACKUPS:
            return
        txn.update(record, {**record.doc, 'backups': backups + [backup_id],
                            'last_report': max(
                                self.now(),
                                record.doc.get('last_report', 0))})


LOG = logging.getLogger(__name__)

# health event ids remembered per process (see RunManager.announce)
_ANNOUNCED_KEPT = 100_000


class RunManager(base.Manager):
    """Reads the ledger, settling lost and missed runs first."""

    kind = KIND
    not_found = 'No run found with ID {}'

    def __init__(self, storage, presence, settings: HealthSettings,
                 default_timezone, **kwargs):
        super().__init__(storage, **kwargs)
        self.presence = presence
        self.settings = settings
        self.default_timezone = default_timezone
        # ids of the health events this process already announced: a
        # settle repeats on every read, the claim in the store need not
        self._announced: collections.OrderedDict = collections.OrderedDict()

    def announce(self, kind, project_id, subject_id, occurrence,
                 details=None):
        """Send one health event (core.notify), once per occurrence across
        every process; a repeat in this process costs nothing."""
        event_id = notify.health_event_id(kind, project_id, subject_id,
                                          occurrence)
        if event_id in self._announced:
            return
        try:
            notify.health_event(kind, project_id, subject_id, occurrence,
                                details)
        except storage_errors.StorageError as exc:
            # NOTE: not remembered: the next settle tries again
            LOG.warning('Could not announce %s: %s', event_id, exc)
            return
        self._announced[event_id] = True
        while len(self._announced) > _ANNOUNCED_KEPT:
            self._announced.popitem(last=False)

    def _announce_runs(self, job, runs):
        """run_failed, run_missed and run_lost for the settled ``runs``."""
        for run in runs:
            status, result = run.get('status'), run.get('result')
            if status == health.MISSED:
                kind = 'run_missed'
            elif status == health.LOST:
                kind = 'run_lost'
            elif status == health.COMPLETED and result == 'fail':
                kind = 'run_failed'
            else:
                continue
            self.announce(kind, job.project_id, job.id, run.get('run_id'),
                          {'job_id': job.id, 'run_id': run.get('run_id'),
                           'client_id': job.doc.get('client_id', ''),
                           'reason': run.get('reason'),
                           'expected_at': run.get('expected_at'),
                           'start': run.get('start'),
                           'end': run.get('end')})

    def _cutoff(self, now):
        return now - self.settings.retention_days * health.DAY

    def job_runs(self, caller: base.Caller, job_id, search_doc,
                 page: base.Page):
        """The runs of one job, newest first (``GET .../jobs/{id}/runs``).

        :raises NotFound: the job is not in the caller's scope.
        """
        try:
            job = self.storage.get('jobs', job_id, caller.scope)
        except storage_errors.NotFound:
            raise NotFound(f'No job found with ID {job_id}')
        query = search.parse(search_doc, self.kind)
        self.settle(job)
        # NOTE: no range on the time for the retention: the purge removed
        # what is past it (see ``recent`` for why)
        self.purge(job)
        query = dataclasses.replace(
            query, match=query.match + (Term('job_id', job_id),))
        return self.storage.list(self.kind, Scope(job.project_id), query,
                                 page.limit, page.offset)

    def purge(self, job) -> int:
        """Remove the job's records older than the retention."""
        return self._purge(Scope(job.project_id), (Term('job_id', job.id),))

    def purge_expired(self) -> int:
        """Remove every project's records older than the retention (the
        background sweep)."""
        return self._purge(Scope(None), ())

    def _purge(self, scope, match, batch=MAX_LIST_LIMIT) -> int:
        query = Query(match=match,
                      ranges=(Range('at', high=self._cutoff(self.now())),))
        removed = 0
        while True:
            old = self.storage.list(self.kind, scope, query, batch, 0)
            for record in old:
                try:
                    self.storage.delete(self.kind, record.id,
                                        Scope(record.project_id))
                    removed += 1
                except storage_errors.NotFound:
                    pass  # another process got there first
            if len(old) < batch:
                return removed

    def recent(self, job) -> list[dict]:
        """The job's records of the last ``RECENT_DAYS``, newest first.

        PERF: by the job's id alone, the time checked here: the store
        lists a job's records newest first, and a range over every
        record's time would make it read them all (1.3 s at 200 000
        records on SQLite, against 2 ms)."""
        low = self.now() - health.RECENT_DAYS * health.DAY
        query = Query(match=(Term('job_id', job.id),))
        found = []
        for record in self.storage.list(self.kind, Scope(job.project_id),
                                        query, MAX_LIST_LIMIT, 0):
            if _at(record.doc) < low:
                break
            found.append(record.doc)
        return found

    def last_success(self, job) -> dict | None:
        """The job's newest successful run, by its records newest first
        (see ``recent``: a search on the result would read every
        project's successful runs)."""
        query = Query(match=(Term('job_id', job.id),))
        for record in every(self.storage, self.kind, Scope(job.project_id),
                            query):
            if record.doc.get('result') == 'success':
                return record.doc
        return None

    def lease(self, job_doc) -> int:
        return health.lease(job_doc, self.settings.default_lease)

    def settle(self, job, presence=UNREAD, recent=None) -> list[dict]:
        """End the job's overdue runs as lost and write its missed runs;
        return its records of the last ``RECENT_DAYS`` as settled.

        ``presence``: the client's presence document (None: never seen),
        read here when not given."""
        return self._settle(job, presence, recent)[0]

    def _settle(self, job, presence=UNREAD, recent=None):
        """``(settled, interval, next_check)``: ``settle``, the job's
        interval, and the first time a missed run may be written after it
        (None: never, as far as the schedule goes)."""
        now = self.now()
        trig, description = health.trigger_of(job.doc,
                                              self.default_timezone)
        interval = health.interval_of(trig, description, now)
        runs = self.recent(job) if recent is None else recent
        lease_seconds = self.lease(job.doc)
        settled = []
        for run in runs:
            if health.is_overdue(run, lease_seconds, now):
                run = self._lose(job, run, lease_seconds)
            settled.append(run)
        next_check = None
        if trig is not None and health.watches_schedule(job.doc):
            if presence is UNREAD:
                presence = self.presence.of_client(
                    job.project_id, job.doc.get('client_id', ''))
            written, next_check = self._missed(job, settled, presence, now,
                                               trig, interval)
            settled = written + settled
            settled.sort(key=_at, reverse=True)
        self._announce_runs(job, settled)
        return settled, interval, next_check

    def refresh(self, job, presence=UNREAD) -> dict:
        """Settle the job and rewrite its summary; return the summary.

        A report the ledger notes meanwhile changes the summary's
        version: the refresh then runs again, so it never overwrites a
        newer note with an older reading."""
        scope = Scope(job.project_id)
        for _ in range(3):
            try:
                seen = self.storage.get(SUMMARY_KIND, job.id, scope)
            except storage_errors.NotFound:
                seen = None
            settled, interval, next_check = self._settle(job, presence)
            success = next((run for run in settled
                            if run.get('result') == 'success'), None)
            if success is None and seen is not None:
                success = seen.doc.get('last_success')
            if success is None and (seen is None or seen.doc.get(
                    'settled_at', -1) < 0):
                # NOTE: only before a settle has made the summary: the
                # ledger notes every good run in it since
                success = self.last_success(job)
            now = self.now()
            doc = health.summary(
                {**job.doc, 'job_id': job.id, 'project_id': job.project_id,
                 'user_id': job.user_id},
                settled, success, interval, self.upcoming(job.doc, now),
                next_check, self.lease(job.doc), now)
            if self._write_summary(job, seen, doc):
                return doc
        return doc

    def _write_summary(self, job, seen, doc) -> bool:
        def change(txn):
            record = txn.get(SUMMARY_KIND, job.id, Scope(job.project_id))
            if seen is None:
                if record is not None:
                    return False
                txn.insert(SUMMARY_KIND, job.id, job.project_id,
                           job.user_id, 0, doc)
                return True
            if record is None or record.version != seen.version:
                return False
            txn.update(record, doc)
            return True

        try:
            return self.storage.atomic(change)
        except storage_errors.Conflict:
            return False  # made meanwhile: read it again

    def upcoming(self, job_doc, now) -> list[list]:
        """``[[iso, epoch], ...]``: the job's next ``health.UPCOMING`` run
        times as its scheduler computes them (none when it is not
        watching the schedule, or cannot arm it)."""
        if not health.watches_schedule(job_doc):
            return []
        try:
            runs = run_times.job_schedule(
                job_doc, self.default_timezone, now,
                health.UPCOMING)['runs']
        except Exception:  # noqa: BLE001 - a schedule it cannot arm
            return []
        return [[run['utc'], int(datetime.datetime.fromisoformat(
            run['utc']).timestamp())] for run in runs]

    def summaries(self, scope: Scope, query=Query()) -> dict[str, dict]:
        """The job summaries in ``scope`` that ``query`` matches, by job
        id."""
        return {record.id: record.doc
                for record in every(self.storage, SUMMARY_KIND, scope,
                                    query)}

    def summary_of(self, project_id, job_id) -> dict | None:
        """The summary of one job, or None."""
        try:
            return self.storage.get(SUMMARY_KIND, job_id,
                                    Scope(project_id)).doc
        except storage_errors.NotFound:
            return None

    def due_summaries(self, scope: Scope, now: float) -> dict[str, dict]:
        """The summaries in ``scope`` due at ``now`` (``settle_due``),
        by job id: an index lookup, not a read of every summary."""
        return self.summaries(scope, Query(ranges=(
            Range('settle_due', high=float(now)),)))

    def forget(self, project_id, job_id) -> None:
        """Remove the summary of a job that is gone."""
        try:
            self.storage.delete(SUMMARY_KIND, job_id, Scope(project_id))
        except storage_errors.NotFound:
            pass

    def _lose(self, job, run, lease_seconds):
        def change(txn):
            record = txn.get(self.kind, run['run_id'],
                             Scope(job.project_id))
            if record is None:
                return run
            if not health.is_overdue(record.doc, lease_seconds,
                                     self.now()):
                return record.doc
            return txn.update(record, health.lost_run(
                record.doc, lease_seconds)).doc

        return self.storage.atomic(change)

    def _missed(self, job, runs, presence, now, trig, interval):
        """The missed runs written, and when the next one may be due."""
        grace = health.grace(interval, self.settings.missed_grace,
                             self.settings.missed_grace_percent)
        created = (job.doc.get('job_schedule') or {}).get('time_created', 0)
        start = max(now - health.RECENT_DAYS * health.DAY,
                    self._cutoff(now), created if isinstance(
                        created, int) else 0)
        expected = health.expected_times(trig, start, now - grace)
        known = {run.get('expected_at') for run in runs
                 if run.get('status') == health.MISSED}
        expected = [at for at in expected if at not in known]
        written = []
        for at, reason in health.missed_runs(
                job.doc, expected, runs, grace, interval, presence,
                self.settings.offline_after):
            doc = health.missed_run({**job.doc, 'job_id': job.id,
                                     'project_id': job.project_id,
                                     'user_id': job.user_id}, at, reason)
            doc['at'] = at
            try:
                self.storage.create(self.kind, doc['run_id'], job.project_id,
                                    job.user_id, health.created_at(at), doc)
            except storage_errors.Conflict:
                pass  # written by another process meanwhile
            written.append(doc)
        return written, health.next_check(trig, now, grace)
