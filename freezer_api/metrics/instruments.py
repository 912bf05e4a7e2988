"""The counters of the traffic, one set per process, in multiprocess mode.

prometheus_client chooses how values are kept when a metric is created:
in memory, or in per-process files under ``PROMETHEUS_MULTIPROC_DIR``.
The directory comes from our configuration, so the variable is set here,
once per process, before the first metric is created; every process of
one service must name the same directory.
"""

import os
import threading

from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import values

ENV_VAR = 'PROMETHEUS_MULTIPROC_DIR'

# Seconds; a create is a few milliseconds, a slow search several seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)

REQUESTS = 'freezer_api_http_requests'
DURATION = 'freezer_api_http_request_duration_seconds'
IN_PROGRESS = 'freezer_api_http_requests_in_progress'
STORE_ERRORS = 'freezer_api_store_errors'


class Instruments:
    """What one process records. Created by ``for_directory`` only."""

    def __init__(self, directory):
        self.directory = directory
        self.requests = Counter(
            REQUESTS, 'HTTP requests answered, by route template, method '
            'and status.', ('route', 'method', 'status'), registry=None)
        self.duration = Histogram(
            DURATION, 'Time from the request reaching the application to '
            'its answer, by route template and method.',
            ('route', 'method'), buckets=LATENCY_BUCKETS, registry=None)
        # NOTE: livesum: the requests of a dead process are no longer in
        # progress, so its file is dropped rather than kept.
        self.in_progress = Gauge(
            IN_PROGRESS, 'HTTP requests being answered, all processes.',
            registry=None, multiprocess_mode='livesum')
        # A new process may have the pid of a dead one, whose file it
        # reopens: nothing of this process is in progress yet.
        self.in_progress.set(0)
        self.store_errors = Counter(
            STORE_ERRORS, 'Requests that failed in the store, by error '
            '(unavailable, query_timeout, conflict).', ('error',),
            registry=None)


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
