"""Concurrency soak: simulated schedulers on several API processes
(issue 7, spec D8).

For each store (SQLite file, PostgreSQL, Elasticsearch), three freezer-api
processes share it while ``FREEZER_SOAK_SCHEDULERS`` scheduler threads
(default 24) and two operators poll, PATCH, send events, start and end
session runs, move jobs between sessions, post backups and register again,
for ``FREEZER_SOAK_SECONDS`` (default 15) per store. Afterwards
(``workload.check``): no 5xx and no unanswered request; one tag per session
run; each session's job entries as the last acknowledged start/end left
them and its result the aggregate of its run; every job holds its last
PATCH and exactly one version per acknowledged write; membership seen the
same from jobs and sessions; every backup there; no duplicated client.
"""

import pytest

from tests.reliability import cluster as cluster_module
from tests.reliability import workload
from tests.reliability.figures import env_float
from tests.reliability.figures import env_int

SECONDS = env_float('FREEZER_SOAK_SECONDS', 15)
SCHEDULERS = env_int('FREEZER_SOAK_SCHEDULERS', 24)
PROCESSES = env_int('FREEZER_SOAK_PROCESSES', 3)


@pytest.fixture(params=['sqlite', 'postgresql', 'elasticsearch'])
def soak_cluster(request, tmp_path):
    if request.param == 'sqlite':
        store = ('sql', f'sqlite:///{tmp_path}/soak.sqlite')
    elif request.param == 'postgresql':
        store = ('sql', request.getfixturevalue('postgresql_url'))
    else:
        index = request.getfixturevalue('elasticsearch_index')
        store = ('elasticsearch', index.url, index.index)
    started = cluster_module.Cluster(tmp_path, store, count=PROCESSES)
    try:
        yield started
    finally:
        started.stop()


def test_soak(soak_cluster, figures):
    transport = workload.Transport(soak_cluster.urls)
    sessions, plan = workload.setup(transport, SCHEDULERS)
    before = workload.versions(transport, plan)
    log = workload.run(transport, sessions, plan, SECONDS)
    checked = workload.check(
        transport, log, sessions, plan, before,
        extra_versions_allowed=soak_cluster.store[0] == 'elasticsearch')
    figures.add('seconds', SECONDS)
    figures.add('schedulers', SCHEDULERS)
    figures.add('api processes', PROCESSES)
    figures.add('requests', sum(transport.statuses.values()))
    for key, value in checked.items():
        figures.add(f'checked {key}', value)
    assert not transport.server_errors, transport.server_errors[:5]
    assert transport.cut == 0, "answers cut off with no process killed"
    assert transport.unanswered == 0
    assert 'Traceback' not in soak_cluster.logs()
    # the load really was concurrent and mixed
    assert checked['session runs'] >= len(sessions)
    assert log.client_conflicts > 0
