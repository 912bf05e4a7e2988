"""Real freezer-api processes on a real Elasticsearch (spec D3, D8).

* Two API processes share one index while threads act like schedulers on
  several hosts: the scenario of ``test_concurrency`` (one tag bump per
  session run, no lost PATCH, never a 5xx).
* The server goes away mid-run: the API answers 503 with a generic JSON
  message, then recovers by itself when the server is back.
"""

import time

import pytest
import requests

from freezer_api.cmd import manage
from tests.cmd import test_concurrency as scenario
from tests.fixtures import servers

pytestmark = pytest.mark.elasticsearch

PROJECT = scenario.PROJECT
HEADERS = scenario.HEADERS
BACKEND_WORDS = ('elastic', 'urllib3', 'transport', 'connection', 'refused',
                 '127.0.0.1', 'traceback', 'exception', 'node')


def _start_apis(tmp_path, index, names):
    started = []
    try:
        for name in names:
            port = servers.free_port()
            conf = servers.write_config(
                tmp_path / f'{name}.conf',
                f'sqlite:///{tmp_path}/unused.sqlite', port=port,
                extra=index.config())
            if not started:
                assert manage.main(['--config-file', str(conf), 'db',
                                    'sync', '-y']) == 0
            started.append(servers.start_freezer_api(
                tmp_path, ['--config-file', str(conf)], port=port,
                name=name))
    except BaseException:
        for server in started:
            server.stop()
        raise
    return started


@pytest.fixture
def es_cluster(tmp_path, elasticsearch_index):
    started = _start_apis(tmp_path, elasticsearch_index, ('a', 'b'))
    yield [server.url + f'/v2/{PROJECT}' for server in started]
    for server in started:
        server.stop()
    # the embedded SQLite store was never touched
    assert not (tmp_path / 'unused.sqlite').exists()


def test_session_runs_and_patches_across_processes(es_cluster):
    scenario.test_session_runs_and_patches_across_processes(es_cluster)


def _assert_generic_503(response, port):
    assert response.status_code == 503, response.text
    body = response.json()
    assert body == {'title': 'Service Unavailable',
                    'description': 'The storage backend is unavailable; '
                                   'retry later.'}
    text = response.text.lower()
    for word in BACKEND_WORDS + (str(port),):
        assert word not in text, word


def test_outage_gives_503_then_recovers(tmp_path, elasticsearch_server,
                                        elasticsearch_index):
    (server,) = _start_apis(tmp_path, elasticsearch_index, ('api',))
    base = server.url + f'/v2/{PROJECT}'
    es_port = elasticsearch_server.url.rsplit(':', 1)[1]
    try:
        created = requests.post(base + '/clients/', headers=HEADERS,
                                json={'client_id': f'{PROJECT}_before'},
                                timeout=30)
        assert created.status_code == 201, created.text
        assert requests.get(server.url + '/healthcheck',
                            timeout=30).status_code == 200

        elasticsearch_server.stop()
        try:
            calls = [
                ('GET', '/clients/', None),
                ('GET', f'/clients/{PROJECT}_before', None),
                ('POST', '/clients/', {'client_id': f'{PROJECT}_during'}),
                ('POST', '/sessions/', {'schedule': {}}),
                ('DELETE', f'/clients/{PROJECT}_before', None),
            ]
            for method, path, body in calls:
                started = time.monotonic()
                response = requests.request(method, base + path,
                                            headers=HEADERS, json=body,
                                            timeout=60)
                _assert_generic_503(response, es_port)
                assert response.headers.get('Retry-After') == '5'
                assert time.monotonic() - started < 30
            health = requests.get(server.url + '/healthcheck', timeout=60)
            assert health.status_code == 503
            assert server.process.poll() is None
        finally:
            elasticsearch_server.start()

        # The same process recovers by itself once the server is back.
        deadline = time.monotonic() + 60
        while True:
            listed = requests.get(base + '/clients/', headers=HEADERS,
                                  timeout=30)
            if listed.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert listed.status_code == 200, listed.text
        assert [c['client']['client_id'] for c in listed.json()[
            'clients']] == [f'{PROJECT}_before']
        created = requests.post(base + '/clients/', headers=HEADERS,
                                json={'client_id': f'{PROJECT}_after'},
                                timeout=30)
        assert created.status_code == 201, created.text
        listed = requests.get(base + '/clients/', headers=HEADERS,
                              timeout=30)
        assert [c['client']['client_id'] for c in listed.json()[
            'clients']] == [f'{PROJECT}_before', f'{PROJECT}_after']
        assert requests.get(server.url + '/healthcheck',
                            timeout=30).status_code == 200
        assert 'Traceback' not in server.log()
    finally:
        server.stop()
