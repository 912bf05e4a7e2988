"""The benchmark harness itself works (``bench/``): no timing is checked.

Runs ``python -m bench --quick --ours-only`` once (our server under uwsgi
on SQLite, a tenth of the data, 2 s of wrk load per scenario) and checks
that every scenario produced answered requests without errors, and that
the report was written with the write targets' table and, after it, the
fleet simulation's (``bench.fleet``, whose results are checked too); and
``bench.hosts`` on the tests' PostgreSQL server.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def quick_bench(tmp_path_factory):
    """One ``python -m bench --quick --ours-only`` run (it ends with the
    fleet simulation, ``bench.fleet``): its stdout and output folder."""
    # NOTE: tools/run-tests.sh installs wrk; without it this fails, never
    # skips.
    assert shutil.which('wrk'), 'the benchmark needs wrk (apt-get install wrk)'
    output = tmp_path_factory.mktemp('bench')
    env = dict(os.environ, HOME=str(output))
    env.pop('FREEZER_API_CONFIG_FILES', None)
    done = subprocess.run(
        [sys.executable, '-m', 'bench', '--quick', '--ours-only',
         '--no-contention', '--output', str(output)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, output


def test_quick_run_of_our_server(quick_bench):
    stdout, tmp_path = quick_bench
    assert 'target met' in stdout, stdout[-3000:]
    assert 'schedulers' in stdout, stdout[-3000:]
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


def test_quick_fleet_simulation(quick_bench):
    """The fleet simulation of that run: every request a scheduler and its
    agent send is played (polls, job runs, backups, session start and end)
    and answered without error; the report names the fleet size found."""
    _, tmp_path = quick_bench
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


def test_split_ids_gives_each_host_its_own_writes():
    from bench import hosts
    ids = {'patch_jobs': list('abcde'), 'sessions': [[1, 2], [3, 4], [5, 6]],
           'jobs': ['j']}
    parts = [hosts.split_ids(ids, n, 2) for n in range(2)]
    assert [p['patch_jobs'] for p in parts] == [['a', 'c', 'e'], ['b', 'd']]
    assert [p['sessions'] for p in parts] == [[[1, 2], [5, 6]], [[3, 4]]]
    assert all(p['jobs'] == ['j'] for p in parts)
    # every connection goes to one instance, whose Lua file counts it
    assert hosts.shares(8, 2) == [4, 4] and hosts.shares(8, 3) == [3, 3, 2]


def test_median_interval_is_the_sign_test_interval():
    from bench import run as bench_run
    # 15 values: the 4th and 12th hold the median with 96.5 %
    assert bench_run.median_interval(list(range(15))) == (3, 11)
    assert bench_run.median_interval(list(range(40))) == (13, 26)
    # 5 values cannot give 95 %
    assert bench_run.median_interval(list(range(5))) is None
    median, low, high = bench_run.paired_cost([1.1] * 6, [1.0] * 6)
    assert round(median, 6) == round(low, 6) == round(high, 6) == 10.0


def test_es_floor_writes_each_kind(elasticsearch_server):
    """``python -m bench.es_floor``'s writes succeed on a node, and each
    kind writes what it says (the bench itself runs outside the suite)."""
    from bench import es_floor
    node = es_floor.Node(elasticsearch_server.url,
                         elasticsearch_server.new_index_name('bench-floor'))
    node.create_indices()
    for kind in es_floor.KINDS:
        node.write(kind, 'true')
    node.seal()
    for index in node.indices:  # the intents' too: written without one
        node.http.request('POST', f'{node.url}/{index}/_refresh')
    counts = [json.loads(node.http.request(
        'GET', f'{node.url}/{index}/_count').data)['count']
        for index in node.indices]
    # a document of each kind; a record of each but the embedding one
    # (in its document), the sealed embedding one's after seal(); no
    # intent left behind
    assert counts == [5, 3, 0]
    for index in node.indices:
        elasticsearch_server.delete_index(index)


def test_quick_run_of_hosts_sharing_postgresql(tmp_path, postgresql_server):
    """``python -m bench.hosts``: SQLite, PostgreSQL and two instances on
    one PostgreSQL database each answer the write scenarios."""
    # the server of the tests, not a second cluster of the benchmark's own
    url = postgresql_server.admin_url.render_as_string(hide_password=False)
    env = dict(os.environ, HOME=str(tmp_path),
               FREEZER_TEST_POSTGRESQL_URL=url)
    env.pop('FREEZER_API_CONFIG_FILES', None)
    done = subprocess.run(
        [sys.executable, '-m', 'bench.hosts', '--small', '--rounds', '1',
         '--duration', '1', '--warmup', '0', '--output', str(tmp_path),
         '--name', 'h', '--scenarios', 'patch_job,session_cycle'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / 'h.json').read_text())['results']
    # the two that write shared documents: jobs, sessions
    assert set(results) == {'patch_job', 'session_cycle'}
    for scenario, targets in results.items():
        assert set(targets) == {'sqlite', 'postgresql', 'postgresql x2'}
        for name, row in targets.items():
            assert row['rate'] > 0, (scenario, name)
            assert row['errors'] == 0 and row['unsuccessful'] == 0, (
                scenario, name, row)
        assert len(targets['postgresql x2']['per_instance']) == 2
        assert all(r > 0 for r in targets['postgresql x2']['per_instance'])
    assert 'postgresql x2' in (tmp_path / 'h.rst').read_text()


def test_sqlite_floor_layouts_write_what_they_say(tmp_path):
    """``python -m bench.sqlite_floor``: each layout updates the document
    and (but ``bare``) appends a chained record and advances the head;
    the trigger refuses a record that does not follow the head."""
    from bench import sqlite_floor
    for layout in sqlite_floor.LAYOUTS:
        path = str(tmp_path / f'{layout}.sqlite')
        sqlite_floor.create(path, layout)
        conn = sqlite3.connect(path, isolation_level=None)
        for _ in range(3):
            sqlite_floor.transaction(conn, layout, lambda count: 0)
        assert conn.execute(
            "SELECT version FROM docs WHERE id = 'doc0'").fetchone() == (4,)
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if layout == 'bare':
            assert tables == {'docs'}
            continue
        records = conn.execute(
            "SELECT seq, record FROM audit_records WHERE project_id = 'p0' "
            'ORDER BY seq').fetchall()
        assert [seq for seq, _ in records] == [1, 2, 3]
        head = conn.execute(
            "SELECT seq, hash FROM audit_heads WHERE project_id = 'p0'"
        ).fetchone()
        assert head == (3, json.loads(records[-1][1])['hash'])
        if layout == 'trigger':
            with pytest.raises(sqlite3.IntegrityError, match='chain moved'):
                conn.execute("INSERT INTO audit_records VALUES "
                             "('p0', 7, 1, '{\"hash\": \"x\"}')")
        conn.close()


def test_sqlite_floor_runs_two_writers(tmp_path):
    from bench import sqlite_floor
    output = tmp_path / 'floor.json'
    # NOTE: in a process of its own: the writers are forked, and a fork
    # of the test process warns once eventlet (oslo.messaging) is loaded
    done = subprocess.run(
        [sys.executable, '-m', 'bench.sqlite_floor', '--rounds', '1',
         '--writes', '20', '--output', str(output)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    layouts = json.loads(output.read_text())['layouts']
    assert list(layouts) == list(sqlite_floor.LAYOUTS)
    assert all(row['cpu_us'] > 0 for row in layouts.values())


def test_versions_serves_two_trees_side_by_side(tmp_path):
    """``bench.versions`` against this tree's HEAD: both sides answered,
    without errors, and the report names each scenario."""
    assert shutil.which('wrk'), 'the benchmark needs wrk (apt-get install wrk)'
    output = tmp_path / 'versions.json'
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop('FREEZER_API_CONFIG_FILES', None)
    done = subprocess.run(
        [sys.executable, '-m', 'bench.versions', 'HEAD', '--rounds', '1',
         '--duration', '1', '--small', '--scenarios', 'patch_job',
         '--output', str(output)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'patch_job' in done.stdout, done.stdout[-3000:]
    row = json.loads(output.read_text())['scenarios']['patch_job']
    assert row['errors'] == 0
    assert row['rate_ratio'] > 0
    for side in ('this', 'then'):
        assert row['runs'][side][0]['requests'] > 0, side
