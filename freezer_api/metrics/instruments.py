"""The counters of the traffic, one set per process, in multiprocess mode.

prometheus_client chooses how values are kept when a metric is created:
in memory, or in per-process files under ``PROMETHEUS_MULTIPROC_DIR``.
The directory comes from our configuration, so the variable is set here,
once per process, before the first metric is created; every process of
one service must name the same directory.
"""

import os
import threading
from typing import Any

from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import values

ENV_VAR = 'PROMETHEUS_MULTIPROC_DIR'

# Seconds; a create is a few milliseconds, a slow search several seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)

REQUESTS = 'freezer_api_http_requests'
DURATION = 'freezer_api_http_request_duration_seconds'
STORE_ERRORS = 'freezer_api_store_errors'


class Instruments:
    """What one process records. Created by ``for_directory`` only.

    PERF: each value written is a locked write to a memory-mapped file;
    a request writes three (its count, its latency bucket and sum), and
    the labelled children are looked up once per label values.
    """

    def __init__(self, directory):
        self.directory = directory
        self.requests = Counter(
            REQUESTS, 'HTTP requests answered, by route template, method '
            'and status.', ('route', 'method', 'status'), registry=None)
        self.duration = Histogram(
            DURATION, 'Time from the request reaching the application to '
            'its answer, by route template and method.',
            ('route', 'method'), buckets=LATENCY_BUCKETS, registry=None)
        self.store_errors = Counter(
            STORE_ERRORS, 'Requests that failed in the store, by error '
            '(unavailable, query_timeout, conflict).', ('error',),
            registry=None)
        self._answers: dict[tuple[str, str, str], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    def record(self, route, method, status, seconds):
        """One answered request."""
        try:
            answers = self._answers[route, method, status]
        except KeyError:
            answers = self._answers[route, method, status] = (
                self.requests.labels(route, method, status))
        answers.inc()
        try:
            latency = self._latencies[route, method]
        except KeyError:
            latency = self._latencies[route, method] = (
                self.duration.labels(route, method))
        latency.observe(seconds)


_lock = threading.Lock()
_current: dict[str, Instruments] = {}


def for_directory(directory):
    """The process's instruments, counting into ``directory``.

    :raises RuntimeError: this process already counts into another
        directory (prometheus_client keeps one per process).
    """
    directory = os.path.abspath(directory)
    with _lock:
        instruments = _current.get('instruments')
        if instruments is not None:
            if instruments.directory != directory:
                raise RuntimeError(
                    f'this process already keeps its metrics in '
                    f'{instruments.directory}, not {directory}')
            return instruments
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.environ[ENV_VAR] = directory
        if not getattr(values.ValueClass, '_multiprocess', False):
            # NOTE: prometheus_client read the environment when it was
            # first imported, before the configuration was.
            values.ValueClass = values.get_value_class()
        instruments = _current['instruments'] = Instruments(directory)
        return instruments
