"""Figures read from the store at scrape time: documents by kind, job and
session states. Counting reads the store, so the figures are reused for
``[metrics] store_cache_seconds``; a store that does not answer leaves
them out of the scrape (``freezer_api_store_figures_up`` says 0)."""

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
    """A prometheus_client collector over the storage driver."""

    def __init__(self, storage, cache_seconds, clock=time.monotonic):
        self.storage = storage
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._figures = None
        self._expires = 0.0

    def _current(self):
        with self._lock:
            now = self.clock()
            if self._figures is None or now >= self._expires:
                try:
                    self._figures = read(self.storage)
                except errors.StorageError as exc:
                    LOG.warning('Store figures for the metrics not read: '
                                '%s', exc.message or type(exc).__name__)
                    self._figures = None
                    return None
                self._expires = now + self.cache_seconds
            return self._figures

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
