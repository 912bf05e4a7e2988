"""Shared by the metrics tests: one metrics directory per test process
(prometheus_client keeps one per process), and reading a scrape."""

import atexit
import os
import shutil
import tempfile

from prometheus_client.parser import text_string_to_metric_families

_dirs: dict[int, str] = {}


def process_dir():
    """The metrics directory of every in-process app of this process."""
    pid = os.getpid()
    if pid not in _dirs:
        _dirs[pid] = tempfile.mkdtemp(prefix='freezer-metrics-tests-')
        atexit.register(shutil.rmtree, _dirs[pid], True)
    return _dirs[pid]


def parse(text):
    """{(sample name, frozenset(labels)): value} of a scrape."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = (
                sample.value)
    return samples


def families(text):
    return {family.name: family
            for family in text_string_to_metric_families(text)}


def value(samples, name, **labels):
    """The sample's value; 0 when the scrape has no such sample."""
    return samples.get((name, frozenset(labels.items())), 0.0)
