"""Backup-health figures, labelled by project, from providers registered
by the code that computes them.

The families are declared here so that the dashboard and the alert rules
have fixed names. Nothing is exported for a family until a provider
yields it: a zero would say "no missed runs" when nobody looked.

A provider is a callable taking the storage driver and returning
``{family name: [(labels dict, value), ...]}``; register it with
``@figures.provider``. It runs at scrape time, in the scraping process,
and should be cheap or cache its answer.
"""

import logging
import threading
import time

from prometheus_client.core import GaugeMetricFamily

LOG = logging.getLogger(__name__)

# name -> (label names, help)
FAMILIES = {
    'freezer_backup_runs': (
        ('project', 'result'),
        'Backup runs of the health window, by project and result.'),
    'freezer_backup_missed_runs': (
        ('project', 'reason'),
        'Scheduled runs that did not happen, by project and reason.'),
    'freezer_backup_stale_runs': (
        ('project',),
        'Runs started and never ended within their allowed time.'),
    'freezer_backup_rpo_breaches': (
        ('project',),
        'Jobs whose last good backup is older than their recovery point '
        'objective.'),
    'freezer_backup_clients_offline': (
        ('project',),
        'Clients that have not polled within their allowed time.'),
}

_lock = threading.Lock()
_providers: list = []


def provider(function):
    """Register ``function`` (a decorator); returns it unchanged."""
    with _lock:
        if function not in _providers:
            _providers.append(function)
    return function


def unregister(function):
    with _lock:
        if function in _providers:
            _providers.remove(function)


class Cached:
    """A provider answering from a reading at most ``seconds`` old.

    PERF: the figures come from settling every job of every project (as
    GET /coverage does); scrapes come every 15-60 s from each Prometheus.
    """

    def __init__(self, read, seconds, clock=time.monotonic):
        self._read = read
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._answer = None
        self._at = None

    def __call__(self, storage):
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self._seconds:
                self._answer = self._read()
                self._at = now
            return self._answer


class HealthFigures:
    """A prometheus_client collector over the registered providers and
    those of this service (``own``)."""

    def __init__(self, storage, own=()):
        self.storage = storage
        self.own = tuple(own)

    def collect(self):
        with _lock:
            providers = list(_providers) + list(self.own)
        samples: dict[str, list] = {}
        for function in providers:
            try:
                answer = function(self.storage)
            except Exception:
                # NOTE: one broken provider must not take the scrape down
                LOG.exception('Health figures provider %r failed',
                              function)
                continue
            for name, rows in answer.items():
                if name not in FAMILIES:
                    LOG.error('Health figures provider %r yields the '
                              'undeclared family %s', function, name)
                    continue
                samples.setdefault(name, []).extend(rows)
        for name, rows in samples.items():
            if not rows:
                continue  # nobody was counted: say nothing (see above)
            labels, text = FAMILIES[name]
            family = GaugeMetricFamily(name, text, labels=labels)
            for row_labels, value in rows:
                family.add_metric([str(row_labels.get(label, ''))
                                   for label in labels], value)
            yield family
