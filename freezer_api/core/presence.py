"""When each client last polled for its jobs (issue 15, point 3).

A scheduler polls by listing its jobs with a ``client_id`` match. The poll
only notes the time in memory; the notes are written (one document per
client, kind ``presence``) at most every ``flush_interval`` seconds per
client and API process, by a background thread, so that the poll does not
wait for a write. Readers of presence call ``flush`` first, so what this
process saw is always counted.

A presence document::

    {"client_id", "last_seen", "first_seen", "gaps": [[from, to], ...],
     "project_id", "user_id"}

``gaps`` are the recent silences longer than ``offline_after``: from the
poll before to the poll after (the missed-run rules read them).
"""

import concurrent.futures
import hashlib
import os
import threading

from freezer_api.core import base
from freezer_api.core import health
from freezer_api.core.runs import every
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import Scope

MAX_GAPS = 100
# seconds a reader waits for a poll being written by the background thread
_FLUSH_WAIT = 10.0


def presence_id(project_id: str, client_id: str) -> str:
    text = f'presence\n{project_id}\n{client_id}'
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]


def polled_client(search_doc) -> str | None:
    """The client a job listing polls for: its ``client_id`` match, the
    way freezer-scheduler asks."""
    if not isinstance(search_doc, dict):
        return None
    match = search_doc.get('match')
    entries = match if isinstance(match, list) else [match]
    for entry in entries:
        if isinstance(entry, dict):
            value = entry.get('client_id')
            if isinstance(value, str) and value and len(value) <= 255:
                return value
    return None


def seen(doc: dict | None, first: int, last: int, gaps: list,
         offline_after: int) -> dict:
    """The presence document once polls from ``first`` to ``last`` are
    counted; ``gaps`` are the silences noted between them in memory."""
    if not doc:
        return {'last_seen': last, 'first_seen': first,
                'gaps': [list(gap) for gap in gaps][-MAX_GAPS:]}
    previous = doc.get('last_seen', last)
    if last <= previous:
        return doc
    recent = last - health.RECENT_DAYS * health.DAY
    kept = [gap for gap in doc.get('gaps') or [] if gap[1] > recent]
    found = list(gaps)
    if first - previous > offline_after:
        found.insert(0, [previous, first])
    for gap in found:
        # NOTE: a silence this process saw may already be written by
        # another one; keep each once.
        if gap[1] > previous and not any(
                old[0] < gap[1] and gap[0] < old[1] for old in kept):
            kept.append(list(gap))
    return {**doc, 'last_seen': last, 'gaps': kept[-MAX_GAPS:]}


class PresenceManager(base.Manager):
    kind = 'presence'

    def __init__(self, storage, flush_interval=30.0, offline_after=300,
                 **kwargs):
        super().__init__(storage, **kwargs)
        self.flush_interval = flush_interval
        self.offline_after = offline_after
        self._lock = threading.Lock()
        # (project_id, client_id) -> polls noted and not yet written
        self._pending: dict[tuple[str, str], dict] = {}
        # (project_id, client_id) -> the last poll this process saw
        self._noted: dict[tuple[str, str], int] = {}
        self._written: dict[tuple[str, str], float] = {}
        # writes handed to the background thread and not finished
        self._in_flight: set = set()
        self._executor = None
        self._pid = None

    def polled(self, caller: base.Caller, search_doc) -> None:
        """Note a job listing; write it later if it is a scheduler's
        poll."""
        client_id = polled_client(search_doc)
        if client_id is None:
            return
        key = (caller.owner.project_id, client_id)
        now = self.now()
        with self._lock:
            previous = self._noted.get(key)
            self._noted[key] = now
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = {
                    'user_id': caller.owner.user_id, 'first': now,
                    'last': now, 'gaps': []}
            else:
                pending['last'] = max(pending['last'], now)
            if previous is not None and now - previous > self.offline_after:
                pending['gaps'].append([previous, now])
            due = now - self._written.get(key, float('-inf')) >= (
                self.flush_interval)
            if due:
                self._written[key] = now
        if due:
            future = self._background().submit(self._flush_one, key)
            with self._lock:
                self._in_flight.add(future)
            future.add_done_callback(self._done)

    def _done(self, future) -> None:
        with self._lock:
            self._in_flight.discard(future)

    def _background(self):
        # NOTE: one writer thread per process, made after a fork too.
        if self._executor is None or self._pid != os.getpid():
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix='presence')
            self._pid = os.getpid()
        return self._executor

    def _flush_one(self, key) -> None:
        with self._lock:
            pending = self._pending.pop(key, None)
        if pending is None:
            return
        project_id, client_id = key
        try:
            self._write(project_id, client_id, pending)
        except storage_errors.StorageError:
            with self._lock:  # keep it for the next flush
                newer = self._pending.get(key)
                if newer is not None:
                    pending = {**newer, 'first': pending['first'],
                               'gaps': pending['gaps'] + newer['gaps']}
                self._pending[key] = pending

    def flush(self) -> None:
        """Write every poll this process noted and has not written.

        A poll whose write the background thread already took is waited
        for: a reader after it must see it (the missed-run reasons depend
        on the last poll)."""
        with self._lock:
            in_flight = list(self._in_flight)
        if in_flight:
            concurrent.futures.wait(in_flight, timeout=_FLUSH_WAIT)
        with self._lock:
            keys = list(self._pending)
        for key in keys:
            self._flush_one(key)

    def _write(self, project_id, client_id, pending):
        doc_id = presence_id(project_id, client_id)
        noted = (pending['first'], pending['last'], pending['gaps'],
                 self.offline_after)

        def change(txn):
            record = txn.get(self.kind, doc_id, Scope(project_id))
            if record is None:
                doc = {'client_id': client_id, 'project_id': project_id,
                       'user_id': pending['user_id'], **seen(None, *noted)}
                txn.insert(self.kind, doc_id, project_id, pending['user_id'],
                           self.created_at(), doc)
                return
            doc = seen(record.doc, *noted)
            if doc is not record.doc:
                txn.update(record, doc)

        self.storage.atomic(change)

    def of_project(self, scope: Scope) -> dict[tuple[str, str], dict]:
        """Every presence document in ``scope``'s project(s), by
        (project_id, client_id)."""
        self.flush()
        found = {}
        for record in every(self.storage, self.kind,
                            Scope(scope.project_id)):
            found[(record.project_id, record.doc.get('client_id'))] = (
                record.doc)
        return found

    def of_client(self, project_id: str, client_id: str) -> dict | None:
        self.flush()
        try:
            return self.storage.get(self.kind,
                                    presence_id(project_id, client_id),
                                    Scope(project_id)).doc
        except storage_errors.NotFound:
            return None
