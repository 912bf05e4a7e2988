"""Folding the files of dead processes: counts are never lost nor doubled,
even when a fold stops halfway."""

import os
import subprocess
import sys
import textwrap

import pytest

from freezer_api.metrics import archive
from freezer_api.metrics import instruments

ROUTE = '/v2/{project_id}/jobs'


def count_in_a_process(directory, requests, errors=0):
    """A real process records ``requests`` requests, then exits."""
    code = textwrap.dedent(f"""\
        import sys
        from freezer_api.metrics import instruments
        mine = instruments.for_directory(sys.argv[1])
        for _ in range({requests}):
            mine.requests.labels({ROUTE!r}, 'POST', '201').inc()
            mine.duration.labels({ROUTE!r}, 'POST').observe(0.003)
        for _ in range({errors}):
            mine.store_errors.labels('unavailable').inc()
        from prometheus_client import Gauge
        busy = Gauge('test_busy', 'per process', registry=None,
                     multiprocess_mode='livesum')
        busy.inc()  # dies busy
        """)
    env = {k: v for k, v in os.environ.items()
           if k != instruments.ENV_VAR}
    subprocess.run([sys.executable, '-c', code, str(directory)], env=env,
                   check=True)


def totals(directory):
    out = {}
    for family in directory.collect():
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            out[(sample.name, labels)] = sample.value
    return out


def requests_of(figures):
    return figures.get((f'{instruments.REQUESTS}_total', (
        ('method', 'POST'), ('route', ROUTE), ('status', '201'))), 0)


def histogram_count(figures):
    return figures.get((f'{instruments.DURATION}_count', (
        ('method', 'POST'), ('route', ROUTE))), 0)


def db_files(path):
    return sorted(name for name in os.listdir(path) if name.endswith('.db'))


def test_dead_processes_folded_once(tmp_path):
    directory = archive.Directory(str(tmp_path))
    count_in_a_process(tmp_path, 3, errors=1)
    count_in_a_process(tmp_path, 4)
    assert len(db_files(tmp_path)) >= 4  # per process: counter, histogram
    first = totals(directory)
    assert requests_of(first) == 7
    assert histogram_count(first) == 7
    assert first[('freezer_api_store_errors_total',
                  (('error', 'unavailable'),))] == 1
    # a dead process is busy no more: its live gauges are dropped
    assert first.get(('test_busy', ()), 0) == 0
    assert db_files(tmp_path) == []
    assert totals(directory) == first
    count_in_a_process(tmp_path, 5)
    third = totals(directory)
    assert requests_of(third) == 12
    assert histogram_count(third) == 12
    assert len(os.listdir(tmp_path / 'pending')) == 0
    assert len([n for n in os.listdir(tmp_path)
                if n.startswith('archive-')]) == 1


def test_live_process_files_stay(tmp_path):
    directory = archive.Directory(str(tmp_path), alive=lambda pid: True)
    count_in_a_process(tmp_path, 2)
    assert requests_of(totals(directory)) == 2
    assert len(db_files(tmp_path)) >= 2


@pytest.mark.parametrize('failing', ['replace', 'remove'])
def test_a_fold_stopped_halfway_counts_each_value_once(
        tmp_path, monkeypatch, failing):
    directory = archive.Directory(str(tmp_path))
    count_in_a_process(tmp_path, 3)
    assert requests_of(totals(directory)) == 3
    count_in_a_process(tmp_path, 2)
    real = getattr(os, failing)

    def broken(*args, **kwargs):
        if failing == 'remove' and 'pending' not in str(args[0]):
            return real(*args, **kwargs)
        raise OSError('killed here')

    # 'replace': before the commit; 'remove': after it
    monkeypatch.setattr(archive.os, failing, broken)
    assert requests_of(totals(directory)) == 5
    assert os.listdir(tmp_path / 'pending')
    monkeypatch.setattr(archive.os, failing, real)
    assert requests_of(totals(directory)) == 5
    assert os.listdir(tmp_path / 'pending') == []
    count_in_a_process(tmp_path, 1)
    assert requests_of(totals(directory)) == 6
