"""Figures read from the store at scrape time: documents by kind, job and
session states. Counting reads the store, so the figures are reused for
``[metrics] store_cache_seconds``, or ten times as long as counting took
if that is longer; a store that does not answer leaves them out of the
scrape (``freezer_api_store_figures_up`` says 0)."""

import fcntl
import json
import logging
import threading
import time

from prometheus_client.core import GaugeMetricFamily

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.query import Query
from freezer_api.storage.query import Term

LOG = logging.getLogger(__name__)

DOCUMENTS = 'freezer_api_documents'
JOBS = 'freezer_api_jobs'
SESSIONS = 'freezer_api_sessions'
UP = 'freezer_api_store_figures_up'
NAMES = (DOCUMENTS, JOBS, SESSIONS, UP)

# The values the API documents (spec §3); anything else counts as "other".
JOB_STATUSES = ('', 'completed', 'stop', 'scheduled', 'running',
                'aborting', 'removed')
SESSION_STATUSES = ('active', 'running', 'completed')
EVERYONE = base.Scope(None)
# The next reading waits at least this many times as long as the last took.
READING_SHARE = 10.0


def _by_value(storage, kind, path, values):
    """{value: count} for the documents of ``kind``; ``other`` takes the
    documents whose ``path`` holds none of ``values`` (or is missing)."""
    counts = {value: storage.count(kind, EVERYONE,
                                   Query(match=(Term(path, value),)))
              for value in values}
    total = storage.count(kind, EVERYONE, Query())
    counts['other'] = max(0, total - sum(counts.values()))
    return total, counts


def read(storage):
    """The figures as {family: {label value: count}}."""
    documents = {kind: storage.count(kind, EVERYONE, Query())
                 for kind in base.KINDS if kind not in ('jobs', 'sessions')}
    documents['jobs'], jobs = _by_value(storage, 'jobs',
                                        'job_schedule.status', JOB_STATUSES)
    documents['sessions'], sessions = _by_value(
        storage, 'sessions', 'status', SESSION_STATUSES)
    return {DOCUMENTS: documents, JOBS: jobs, SESSIONS: sessions}


class StoreFigures:
    """A prometheus_client collector over the storage driver.

    With ``shared_file``, the processes of the service share one reading:
    whichever scrapes first after it expired reads the store, under a lock
    on the file, the others reuse what it wrote.
    """

    def __init__(self, storage, cache_seconds, shared_file=None,
                 clock=time.time, timer=time.monotonic):
        self.storage = storage
        self.timer = timer
        self.cache_seconds = cache_seconds
        self.shared_file = shared_file
        self.clock = clock
        self._lock = threading.Lock()
        self._figures = None
        self._expires = 0.0

    def _read_store(self):
        """(figures or None, seconds until the next reading)."""
        started = self.timer()
        try:
            figures = read(self.storage)
        except errors.StorageError as exc:
            LOG.warning('Store figures for the metrics not read: %s',
                        exc.message or type(exc).__name__)
            return None, 0.0
        except Exception:
            # NOTE: a bug here must not take the traffic figures down too
            LOG.exception('Store figures for the metrics failed')
            return None, 0.0
        took = self.timer() - started
        # NOTE: a store whose engine counts by reading every document
        # (StorageDriver.count's default) gets slow to count as it grows:
        # counting then takes at most a tenth of the time.
        return figures, max(self.cache_seconds, READING_SHARE * took)

    def _shared(self, now):
        """(figures, expiry) from the shared file, read again if stale."""
        with open(self.shared_file, 'a+') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            try:
                saved = json.loads(handle.read())
                expires, ttl = float(saved['expires']), float(saved['ttl'])
                if now < expires <= now + ttl:
                    return saved['figures'], expires
            except (ValueError, TypeError, KeyError):
                pass  # empty or damaged: read the store
            figures, ttl = self._read_store()
            if figures is None:
                return None, 0.0
            expires = now + ttl
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({'expires': expires, 'ttl': ttl,
                                     'figures': figures}))
            handle.flush()
            return figures, expires

    def _current(self):
        with self._lock:
            now = self.clock()
            if self._figures is not None and now < self._expires:
                return self._figures
            if self.shared_file is None:
                figures, ttl = self._read_store()
                expires = now + ttl
            else:
                figures, expires = self._shared(now)
            self._figures, self._expires = figures, expires
            return figures

    def collect(self):
        figures = self._current()
        yield GaugeMetricFamily(
            UP, 'Whether the store figures of this scrape could be read '
            '(1) or not (0).', value=0 if figures is None else 1)
        if figures is None:
            return
        for name, label, text in (
                (DOCUMENTS, 'kind', 'Documents in the store, by kind.'),
                (JOBS, 'status', 'Jobs by job_schedule.status ("" is a '
                 'job never scheduled).'),
                (SESSIONS, 'status', 'Sessions by status.')):
            family = GaugeMetricFamily(name, text, labels=(label,))
            for value, count in sorted(figures[name].items()):
                family.add_metric((value,), count)
            yield family
