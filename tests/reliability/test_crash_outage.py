"""Crashes and store outages under write load (issue 7, spec D3, D8).

* ``test_kill_9_under_write_load``: two API processes on one store with
  the scheduler workload of ``workload`` running; one process gets SIGKILL
  mid-load and is started again. Every acknowledged write must be there,
  no session/job pair may be half linked, the survivor never answers 5xx.
* ``test_journal_rolls_back_a_change_cut_by_kill_9``: on Elasticsearch a
  change of several documents (adding a job to a session) is cut by
  SIGKILL at a chosen point, deterministically; the next process rolls it
  back from its journal entry. ``test_roll_back_spares_a_later_identical_
  write`` and ``test_writer_that_lost_its_intent_undoes_its_change`` pin
  the two ways a roll-back could destroy an acknowledged write.
* ``test_store_outage_under_write_load``: the store is stopped for real
  mid-load (PostgreSQL: ``pg_ctl stop -m immediate``; Elasticsearch:
  SIGKILL of the node) on a server of the test's own, and started again
  on the same port and data: 503 while it is down, service again by
  itself afterwards, nothing acknowledged lost, nothing half applied.

Lengths: ``FREEZER_CRASH_SECONDS`` (load per test, default 8).
"""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests

from freezer_api.core import base as core_base
from freezer_api.core.service import Services
from freezer_api.storage import base
from freezer_api.storage.base import Scope
from tests.conftest import make_conf
from tests.fixtures import elasticsearch as es_fixture
from tests.fixtures import postgresql as pg_fixture
from tests.reliability import cluster as cluster_module
from tests.reliability import workload
from tests.reliability.figures import env_float

SECONDS = env_float('FREEZER_CRASH_SECONDS', 8)
SCHEDULERS = 12


def _store(request, tmp_path, name):
    if name == 'sqlite':
        return ('sql', f'sqlite:///{tmp_path}/crash.sqlite')
    if name == 'postgresql':
        return ('sql', request.getfixturevalue('postgresql_url'))
    index = request.getfixturevalue('elasticsearch_index')
    return ('elasticsearch', index.url, index.index)


def _wait_consistent(transport, log, sessions, plan, before):
    """Check, giving interrupted Elasticsearch changes time to be rolled
    back (every process looks for them at most every 10 s)."""
    deadline = time.monotonic() + 40
    while True:
        try:
            return workload.check(transport, log, sessions, plan, before,
                                  faults=True)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            # a write makes the processes look for interrupted changes
            transport.call('POST', '/clients/', {
                'client_id': f'{workload.PROJECT}_host0'})
            time.sleep(1)


@pytest.mark.parametrize('store_name', ['sqlite', 'postgresql',
                                        'elasticsearch'])
def test_kill_9_under_write_load(request, tmp_path, store_name, figures):
    store = _store(request, tmp_path, store_name)
    apis = cluster_module.Cluster(tmp_path, store, count=2)
    try:
        transport = workload.Transport(apis.urls)
        sessions, plan = workload.setup(transport, SCHEDULERS)
        before = workload.versions(transport, plan)
        killed = []

        def kill_then_restart(elapsed):
            if not killed and elapsed > SECONDS / 3:
                killed.append(apis.kill9(0))
                figures.add('SIGKILL')
            elif len(killed) == 1 and elapsed > 2 * SECONDS / 3:
                apis.restart(0)
                killed.append('restarted')

        log = workload.run(transport, sessions, plan, SECONDS,
                           during=kill_then_restart)
        assert killed == [-signal.SIGKILL, 'restarted']
        survivor = [e for e in transport.server_errors]
        assert not survivor, survivor[:5]
        checked = _wait_consistent(transport, log, sessions, plan, before)
        figures.add('requests', sum(transport.statuses.values()))
        figures.add('unanswered (sent to the dead process)',
                    transport.unanswered)
        figures.add('acknowledged writes checked',
                    checked['backups'] + sum(
                        1 for sent in log.patches.values()
                        for _, ok in sent if ok))
        assert 'Traceback' not in apis.servers[1].log()
    finally:
        apis.stop()


CHILD = textwrap.dedent("""\
    import os, signal, sys
    from freezer_api.core import base
    from freezer_api.core.service import Services
    from freezer_api.storage.base import Scope
    from freezer_api.storage.elasticsearch import driver as es
    from tests.conftest import make_conf
    import pathlib

    hosts, index, session_id, job_id, die = sys.argv[1:6]
    conf = make_conf(pathlib.Path(sys.argv[6]), **{
        'storage.driver': 'elasticsearch',
        'elasticsearch.hosts': [hosts], 'elasticsearch.index': index})
    driver = es.ElasticsearchDriver(conf)
    writes = []
    real_write = driver.journal.write_one
    real_finish = driver.journal.finish

    def write(*args, **kwargs):
        if die == str(len(writes)):
            os.kill(os.getpid(), signal.SIGKILL)
        writes.append(real_write(*args, **kwargs))
        return writes[-1]

    def finish(*args, **kwargs):
        if die == 'before-close':
            os.kill(os.getpid(), signal.SIGKILL)
        return real_finish(*args, **kwargs)

    driver.journal.write_one = write
    driver.journal.finish = finish
    driver.journal.next_sweep = float('inf')   # this process only writes
    caller = base.Caller(Scope('p1'), base.Owner('p1', 'u1', 'u1'))
    Services(driver).sessions.add_job(caller, session_id, job_id)
    print('not killed')
""")


@pytest.mark.parametrize('die', ['0', '1', 'before-close'])
def test_journal_rolls_back_a_change_cut_by_kill_9(tmp_path,
                                                   elasticsearch_index,
                                                   die, figures):
    from freezer_api.storage.elasticsearch.driver import ElasticsearchDriver
    conf = make_conf(tmp_path, **elasticsearch_index.overrides)
    driver = ElasticsearchDriver(conf)
    try:
        driver.upgrade_schema()
        services = Services(driver)
        caller = core_base.Caller(Scope('p1'),
                                  core_base.Owner('p1', 'u1', 'u1'))
        services.clients.create(caller, {'client_id': 'p1_node'})
        job_id = services.jobs.create(caller, {
            'client_id': 'p1_node', 'job_schedule': {},
            'job_actions': [{'freezer_action': {'action': 'backup'}}]})
        session_id = services.sessions.create(caller, {'schedule': {}})
        job_before = driver.get('jobs', job_id, Scope('p1'))
        session_before = driver.get('sessions', session_id, Scope('p1'))

        child = subprocess.run(
            [sys.executable, '-c', CHILD, elasticsearch_index.url,
             elasticsearch_index.index, session_id, job_id, die,
             str(tmp_path)], cwd=os.getcwd(), capture_output=True,
            text=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, (child.stdout,
                                                     child.stderr)
        figures.add('SIGKILL mid-change')
        job = driver.get('jobs', job_id, Scope('p1'))
        session = driver.get('sessions', session_id, Scope('p1'))
        # the cut left its mark: writes of the change already applied
        written = (job.version != job_before.version) + (
            session.version != session_before.version)
        assert written == {'0': 0, '1': 1, 'before-close': 2}[die]

        # the next change of any process rolls the cut change back
        driver.journal.next_sweep = 0.0
        services.sessions.update(caller, session_id, {'description': 'x'})
        job = driver.get('jobs', job_id, Scope('p1'))
        session = driver.get('sessions', session_id, Scope('p1'))
        assert job.doc == job_before.doc
        assert session.doc['jobs'] == session_before.doc['jobs'] == {}
        assert driver.recover_interrupted(everything=True) == 0
        # and the change can be made again, whole
        services.sessions.add_job(caller, session_id, job_id)
        job = driver.get('jobs', job_id, Scope('p1'))
        session = driver.get('sessions', session_id, Scope('p1'))
        assert job.doc['session_id'] == session_id
        assert list(session.doc['jobs']) == [job_id]
    finally:
        driver.close()


def _job_and_session(driver):
    services = Services(driver)
    caller = core_base.Caller(Scope('p1'), core_base.Owner('p1', 'u1', 'u1'))
    services.clients.create(caller, {'client_id': 'p1_node'})
    job_id = services.jobs.create(caller, {
        'client_id': 'p1_node', 'job_schedule': {},
        'job_actions': [{'freezer_action': {'action': 'backup'}}]})
    session_id = services.sessions.create(caller, {'schedule': {}})
    return services, caller, job_id, session_id


def _membership(driver, job_id, session_id):
    job = driver.get('jobs', job_id, Scope('p1'))
    session = driver.get('sessions', session_id, Scope('p1'))
    return job.doc['session_id'], sorted(session.doc['jobs'])


def test_roll_back_spares_a_later_identical_write(tmp_path,
                                                  elasticsearch_index):
    """The soak's lost add-job: an attempt that lost a race undid its
    writes but its intent stayed (the undo's answer was lost); the attempt
    run again wrote the same content under the same versions (an undo puts
    the earlier version back) and was acknowledged. A roll-back that
    recognised "its" writes by version and content took them for the
    interrupted attempt's and rolled back the acknowledged change: job and
    session both back to "not a member". With the stamp it leaves them."""
    from freezer_api.storage.elasticsearch import driver as es
    conf = make_conf(tmp_path, **elasticsearch_index.overrides)
    driver = es.ElasticsearchDriver(conf)
    try:
        driver.upgrade_schema()
        services, caller, job_id, session_id = _job_and_session(driver)
        real_write, real_undo = driver.journal.write_one, driver.journal.undo
        lost = []

        def write(key, entry, *args, **kwargs):
            if key.startswith('sessions/') and not lost:
                lost.append(key)
                raise base.LostRace()  # the session write lost a race
            return real_write(key, entry, *args, **kwargs)

        def undo(applied):
            real_undo(applied)
            return False            # ... and the undo's answer was lost

        driver.journal.write_one = write
        driver.journal.undo = undo
        driver.journal.next_sweep = float('inf')
        services.sessions.add_job(caller, session_id, job_id)  # acknowledged
        driver.journal.undo = real_undo
        assert lost
        assert _membership(driver, job_id, session_id) == (session_id,
                                                           [job_id])
        # the first attempt's intent is still there; the sweep takes it
        assert driver.recover_interrupted() == 1
        assert _membership(driver, job_id, session_id) == (session_id,
                                                           [job_id])
    finally:
        driver.close()


def test_writer_that_lost_its_intent_undoes_its_change(tmp_path,
                                                       elasticsearch_index):
    """A sweep takes the intent of a change still being written (its owner
    looked dead, or outlived its lease): the writer's last writes come
    after the roll-back, so the writer itself undoes them and does not
    acknowledge the change (503)."""
    from freezer_api.storage import errors
    from freezer_api.storage.elasticsearch import driver as es
    conf = make_conf(tmp_path, **elasticsearch_index.overrides)
    driver = es.ElasticsearchDriver(conf)
    sweeper = es.ElasticsearchDriver(conf)
    try:
        driver.upgrade_schema()
        services, caller, job_id, session_id = _job_and_session(driver)
        before = _membership(driver, job_id, session_id)
        real_write = driver.journal.write_one
        swept = []

        def write(key, entry, *args, **kwargs):
            if key.startswith('sessions/') and not swept:
                swept.append(sweeper.recover_interrupted(everything=True))
            return real_write(key, entry, *args, **kwargs)

        driver.journal.write_one = write
        driver.journal.next_sweep = float('inf')
        with pytest.raises(errors.Unavailable):
            services.sessions.add_job(caller, session_id, job_id)
        assert swept == [1]
        assert _membership(driver, job_id, session_id) == before
        assert sweeper.recover_interrupted(everything=True) == 0
    finally:
        driver.close()
        sweeper.close()


@contextlib.contextmanager
def _stoppable_store(name):
    """A store server of the test's own (the shared ones stay up):
    ``(store, stop, start)``. PostgreSQL stops with ``pg_ctl stop -m
    immediate`` (every server process quits at once, open transactions
    cut) and starts again on its port and data directory; the
    Elasticsearch node gets SIGKILL (launcher and JVM) and starts again on
    its ports and data path."""
    if name == 'postgresql':
        server = pg_fixture.start_stoppable_server()
        if server is None:
            pytest.skip('stopping PostgreSQL needs its server programs '
                        '(initdb, pg_ctl)')
        try:
            yield (('sql', server.create_database()),
                   lambda: server.cluster.halt('immediate'),
                   server.cluster.restart)
        finally:
            server.close()
    else:
        node = es_fixture.start_node()
        try:
            yield (('elasticsearch', node.url, 'freezer-outage'), node.kill,
                   node.start)
        finally:
            node.remove()


@pytest.mark.parametrize('store_name', ['postgresql', 'elasticsearch'])
def test_store_outage_under_write_load(tmp_path, store_name, figures):
    """The store is stopped for real a quarter of the way, started again
    at half time (the load goes on meanwhile), and the load runs on for
    half the length once it is back."""
    with _stoppable_store(store_name) as (store, stop, start):
        apis = cluster_module.Cluster(tmp_path, store, count=2)
        try:
            _outage(apis, stop, start, figures)
        finally:
            apis.stop()


def _outage(apis, stop, start, figures):
    transport = workload.Transport(apis.urls)
    sessions, plan = workload.setup(transport, SCHEDULERS)
    before = workload.versions(transport, plan)
    state = {}
    restarter = []

    def bring_back():
        try:
            start()
        except BaseException as exc:  # reported below
            state['error'] = exc
        finally:
            state['back'] = time.monotonic()

    def outage(elapsed):
        if 'down' not in state and elapsed > SECONDS / 4:
            state['statuses before'] = dict(transport.statuses)
            stop()
            state['down'] = time.monotonic()
            figures.add('store stops')
        elif 'down' in state and not restarter and elapsed > SECONDS / 2:
            restarter.append(threading.Thread(target=bring_back,
                                              daemon=True))
            restarter[0].start()
        elif 'back' in state and 'statuses back' not in state:
            state['statuses back'] = dict(transport.statuses)

    def longer():
        return 'back' not in state or (
            time.monotonic() - state['back'] < SECONDS / 2)

    log = workload.run(transport, sessions, plan, SECONDS, during=outage,
                       longer=longer, limit=SECONDS + 240)
    assert restarter, 'the store was never stopped'
    restarter[0].join(timeout=60)
    assert 'error' not in state, state.get('error')
    assert 'statuses back' in state, 'the store did not come back in time'
    down, back = state['statuses before'], state['statuses back']
    during_outage = {k: back.get(k, 0) - down.get(k, 0) for k in back}
    after = {k: transport.statuses[k] - back.get(k, 0)
             for k in transport.statuses}
    # while the store was down: 503s, and nothing else of 5xx
    assert during_outage.get(503, 0) > 0, during_outage
    assert {e[2] for e in transport.server_errors} <= {503}
    # back by itself, under load: writes acknowledged again ...
    assert sum(after.get(k, 0) for k in (201, 202, 204)) > 0, after
    # ... and every process answers
    for url in apis.urls:
        deadline = time.monotonic() + 60
        while True:
            resp = requests.get(
                f'{url}/v2/{workload.PROJECT}/jobs/?limit=1',
                headers=workload.HEADERS, timeout=30)
            if resp.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert resp.status_code == 200, resp.text
    checked = _wait_consistent(transport, log, sessions, plan, before)
    figures.add('requests', sum(transport.statuses.values()))
    figures.add('seconds down', round(state['back'] - state['down'], 1))
    figures.add('503 while down', during_outage.get(503, 0))
    figures.add('acknowledged writes checked',
                checked['backups'] + sum(
                    1 for sent in log.patches.values()
                    for _, ok in sent if ok))
    logs = apis.logs()
    figures.add('journal roll-backs', logs.count('Rolling back a change'))
    assert 'Traceback' not in logs
