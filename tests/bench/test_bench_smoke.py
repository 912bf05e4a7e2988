"""The benchmark harness itself works (``bench/``): no timing is checked.

Runs ``python -m bench --quick --ours-only`` (our server under uwsgi on
SQLite, a tenth of the data, 2 s of wrk load per scenario) and checks that
every scenario produced answered requests without errors, and that the
report was written with the write targets' table and, after it, the fleet
simulation's.
"""

import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_quick_run_of_our_server(tmp_path):
    # NOTE: tools/run-tests.sh installs wrk; without it this fails, never
    # skips.
    assert shutil.which('wrk'), 'the benchmark needs wrk (apt-get install wrk)'
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop('FREEZER_API_CONFIG_FILES', None)
    done = subprocess.run(
        [sys.executable, '-m', 'bench', '--quick', '--ours-only',
         '--no-contention', '--output', str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'target met' in done.stdout, done.stdout[-3000:]
    assert 'schedulers' in done.stdout, done.stdout[-3000:]
    assert (tmp_path / 'fleet-quick.json').exists()

    results = json.loads((tmp_path / 'quick.json').read_text())
    summary = results['stores']['sqlite']['summary']
    for scenario in ('poll', 'get_job', 'create_backup', 'patch_job',
                     'session_cycle', 'backup_search'):
        measured = summary[f'ours/{scenario}']
        assert measured['rate'] > 0, scenario
        assert measured['errors'] == 0, scenario
        assert measured['cpu_ms'] > 0, scenario
        assert measured['rss_mib'] > 0, scenario
    assert results['ceiling']['poll'] > 0
    report = (tmp_path / 'quick.rst').read_text()
    assert 'session_cycle' in report and 'ratio' in report
    assert 'target met' in report


def test_quick_fleet_simulation(tmp_path):
    """``python -m bench.fleet --quick``: every request a scheduler and its
    agent send is played (polls, job runs, backups, session start and end)
    and answered without error; the report names the fleet size found."""
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop('FREEZER_API_CONFIG_FILES', None)
    done = subprocess.run(
        [sys.executable, '-m', 'bench.fleet', '--quick', '--ours-only',
         '--output', str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((tmp_path / 'fleet-quick.json').read_text())
    assert 'failures' not in results, results['failures']
    found = results['fleet']['sqlite/ours']
    assert found['trials'], found
    for trial in found['trials']:
        assert trial['errors'] == 0, trial
        assert set(trial['kinds']) == {'poll', 'run', 'backup', 'finish',
                                       'start', 'end'}, trial['kinds']
        assert trial['wrk_cpu_share'] > 0 and trial['server_cpu_share'] > 0
    assert found['largest'] == 40
    report = (tmp_path / 'fleet-quick.rst').read_text()
    assert 'sqlite' in report and 'schedulers' in report
