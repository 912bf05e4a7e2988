"""Metrics under uwsgi with two worker processes: the counts of both add
up, and a killed (then respawned) worker neither resets nor doubles them.
"""

import concurrent.futures
import os
import signal
import time

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import HEADERS
from tests.fixtures import servers

ROUTE = '/v2/{project_id}/clients/{client_id}'
APP_READY = "WSGI app 0 (mountpoint='') ready"


def route_count(url):
    answer = requests.get(url + '/metrics', timeout=60)
    assert answer.status_code == 200, answer.text
    total = 0.0
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if (sample.name == 'freezer_api_http_requests_total'
                    and sample.labels.get('route') == ROUTE
                    and sample.labels.get('method') == 'GET'):
                total += sample.value
    return total


def get_many(url, count):
    """``count`` GETs of one route, eight at a time (both workers serve)."""
    def one(_):
        answer = requests.get(url + '/v2/proj1/clients/proj1_nope',
                              headers=HEADERS, timeout=60)
        assert answer.status_code == 404, answer.text

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def workers(service):
    return sorted(child.pid for child in
                  psutil.Process(service.process.pid).children())


def counting_pids(directory):
    return {name.rsplit('_', 1)[1][:-3] for name in os.listdir(directory)
            if name.startswith('counter_') and name.endswith('.db')}


def test_counts_add_up_across_workers_and_survive_a_killed_one(
        tmp_path, run_service):
    config = servers.write_config(
        tmp_path / 'freezer-api.conf', f'sqlite:///{tmp_path}/db.sqlite',
        extra="""
        [metrics]
        enabled = true
        allowed_addresses = 127.0.0.1
        """)
    port = servers.free_port()
    argv = [os.path.join(servers.BIN, 'uwsgi'), '--http-socket',
            f'127.0.0.1:{port}', '--need-app', '--master', '--processes',
            '2', '--lazy-apps', '--single-interpreter', '--die-on-term',
            '--add-header', 'Connection: close', '--module',
            'freezer_api.cmd.wsgi:application']
    env = servers.clean_env(tmp_path, FREEZER_API_CONFIG_FILES=str(config),
                            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / 'wrong'))
    service = run_service(argv, f'http://127.0.0.1:{port}',
                          tmp_path / 'uwsgi.log', env)
    service.wait_ready()
    service.wait_for_log(APP_READY, count=2)
    directory = tmp_path / 'metrics'  # <state_path>/metrics

    get_many(service.url, 60)
    assert route_count(service.url) == 60
    first_workers = workers(service)
    assert len(first_workers) == 2
    # both processes counted (each has its own file), and the sum is right
    assert counting_pids(directory) == {str(pid) for pid in first_workers}

    os.kill(first_workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while len(set(workers(service)) - set(first_workers)) < 1:
        assert time.monotonic() < deadline, service.log()
        time.sleep(0.2)
    service.wait_for_log(APP_READY, count=3)
    # the dead worker's counts are still there, once
    for _ in range(4):  # whichever worker answers the scrape
        assert route_count(service.url) == 60
    assert str(first_workers[0]) not in counting_pids(directory)

    get_many(service.url, 40)
    assert route_count(service.url) == 100
    # [metrics] decides where the counts go, not an inherited variable
    assert not (tmp_path / 'wrong').exists()
