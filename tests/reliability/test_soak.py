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
same from jobs and sessions; every backup there; no duplicated client;
every project's audit chain verifies (``freezer-manage audit verify``).
"""

import io

import pytest

from freezer_api.cmd import manage

from tests.reliability import cluster as cluster_module
from tests.reliability import workload
from tests.reliability.figures import env_float
from tests.reliability.figures import env_int

SECONDS = env_float('FREEZER_SOAK_SECONDS', 15)
SCHEDULERS = env_int('FREEZER_SOAK_SCHEDULERS', 24)
PROCESSES = env_int('FREEZER_SOAK_PROCESSES', 3)
# NOTE: seconds a request may take before it counts as unanswered. On a
# test machine loaded by other work, a change that keeps losing races on a
# hot session document (retries take turns within a process) was seen to
# take over 30 s on Elasticsearch; the soak checks what is stored, not
# latency, and reports the slowest answer.
REQUEST_TIMEOUT = env_float('FREEZER_SOAK_REQUEST_TIMEOUT', 120)


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
    transport = workload.Transport(soak_cluster.urls,
                                   timeout=REQUEST_TIMEOUT)
    sessions, plan = workload.setup(transport, SCHEDULERS)
    before = workload.versions(transport, plan)
    log = workload.run(transport, sessions, plan, SECONDS)
    figures.add('slowest answer (s)', round(transport.slowest, 1))
    figures.add('unanswered', transport.unanswered)
    figures.add('5xx', len(transport.server_errors))
    # NOTE: first: a write answered 503 (or not at all) may have been
    # applied all the same, which the checks below would report as a lost
    # or extra write; the 5xx is the finding then.
    assert not transport.server_errors, transport.server_errors[:5]
    assert transport.cut == 0, "answers cut off with no process killed"
    assert transport.unanswered == 0, transport.unanswered_calls[:5]
    checked = workload.check(transport, log, sessions, plan, before)
    figures.add('seconds', SECONDS)
    figures.add('schedulers', SCHEDULERS)
    figures.add('api processes', PROCESSES)
    figures.add('requests', sum(transport.statuses.values()))
    for key, value in checked.items():
        figures.add(f'checked {key}', value)
    logs = soak_cluster.logs()
    # changes of several documents left behind and rolled back (the
    # Elasticsearch journal; see doc/reliability.rst)
    figures.add('journal roll-backs', logs.count('Rolling back a change'))
    assert 'Traceback' not in logs
    # Every project's audit chain is whole: writers of several processes
    # never fork it, nor seal after a record their change then undid.
    out = io.StringIO()
    code = manage.main(['--config-file', str(soak_cluster.configs[0][1]),
                        'audit', 'verify'], out=out)
    figures.add('audit chains', out.getvalue().count('records verified'))
    assert code == 0, out.getvalue()
    assert 'records verified' in out.getvalue()
    # the load really was concurrent and mixed
    assert checked['session runs'] >= len(sessions)
    assert log.client_conflicts > 0
