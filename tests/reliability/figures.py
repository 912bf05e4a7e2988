"""Counters the reliability tests report, for doc/reliability.rst.

Each test adds what it did (requests sent, operations run, faults
injected, documents checked) under a name; when
``FREEZER_RELIABILITY_FIGURES`` names a file, the counts are merged into
that JSON file at the end of the test, so that one run of the suite with
long settings yields the published figures.
"""

import collections
import fcntl
import json
import os

ENV = 'FREEZER_RELIABILITY_FIGURES'


class Figures:
    def __init__(self, name):
        self.name = name
        self.counts = collections.Counter()

    def add(self, key, amount=1):
        self.counts[key] += amount

    def save(self):
        path = os.environ.get(ENV)
        if not path or not self.counts:
            return
        with open(path, 'a+') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read()
            data = json.loads(text) if text.strip() else {}
            entry = collections.Counter(data.get(self.name, {}))
            entry.update(self.counts)
            data[self.name] = dict(sorted(entry.items()))
            handle.seek(0)
            handle.truncate()
            json.dump(data, handle, indent=2, sort_keys=True)


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name, default):
    value = os.environ.get(name)
    return float(value) if value else default
