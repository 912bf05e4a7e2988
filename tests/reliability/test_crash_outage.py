"""Crashes and store outages under write load (issue 7, spec D3, D8).

* ``test_kill_9_under_write_load``: two API processes on one store with
  the scheduler workload of ``workload`` running; one process gets SIGKILL
  mid-load and is started again. Every acknowledged write must be there,
  no session/job pair may be half linked, the survivor never answers 5xx.
* ``test_store_outage_under_write_load``: the store (PostgreSQL,
  Elasticsearch) becomes unreachable mid-load (a TCP proxy between the API
  and the store refuses and drops every connection, as a stopped server
  does) and comes back: 503 while it is down, service again by itself
  afterwards, nothing acknowledged lost, nothing half applied.

Lengths: ``FREEZER_CRASH_SECONDS`` (load per test, default 8).
"""

import signal
import time

import pytest
import requests

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


# NOTE: not on Elasticsearch yet: a change of several documents cut by
# SIGKILL between its writes stays half applied there (doc/reliability.rst,
# "Open issues"); the store outage below does run on it.
@pytest.mark.parametrize('store_name', ['sqlite', 'postgresql'])
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


@pytest.mark.parametrize('store_name', ['postgresql', 'elasticsearch'])
def test_store_outage_under_write_load(request, tmp_path, store_name,
                                       figures):
    store = _store(request, tmp_path, store_name)
    if store[0] == 'sql':
        host, port = cluster_module.sql_target(store[1])
        proxy = cluster_module.proxy_to(host, port)
        store = ('sql', cluster_module.proxied_sql_url(store[1], proxy.port))
    else:
        target = requests.utils.urlparse(store[1])
        proxy = cluster_module.proxy_to(target.hostname, target.port)
        store = ('elasticsearch', proxy.url, store[2])
    apis = None
    try:
        apis = cluster_module.Cluster(tmp_path, store, count=2)
        transport = workload.Transport(apis.urls)
        sessions, plan = workload.setup(transport, SCHEDULERS)
        before = workload.versions(transport, plan)
        phases = []
        during_outage = {}

        def outage(elapsed):
            if not phases and elapsed > SECONDS / 4:
                proxy.pause()
                figures.add('store outages')
                phases.append(('down', dict(transport.statuses)))
            elif len(phases) == 1 and elapsed > SECONDS / 2:
                during_outage.update(
                    {k: transport.statuses[k] - phases[0][1].get(k, 0)
                     for k in transport.statuses})
                proxy.resume()
                phases.append(('up', dict(transport.statuses)))

        log = workload.run(transport, sessions, plan, SECONDS,
                           during=outage)
        assert [p[0] for p in phases] == ['down', 'up']
        # while the store was down: 503s, and nothing else of 5xx
        assert during_outage.get(503, 0) > 0, during_outage
        assert {e[2] for e in transport.server_errors} <= {503}
        # back by itself: every process answers again
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
        figures.add('503 while down', during_outage.get(503, 0))
        figures.add('acknowledged writes checked',
                    checked['backups'] + sum(
                        1 for sent in log.patches.values()
                        for _, ok in sent if ok))
        assert 'Traceback' not in apis.logs()
    finally:
        if apis is not None:
            apis.stop()
        proxy.close()
