"""GET /metrics in process: counts by route template, access control by
address and admin role, store figures, 404 while disabled."""

import falcon.testing
import pytest

from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api.metrics import figures
from freezer_api.metrics import store
from freezer_api.storage import errors as storage_errors
from tests.conftest import make_conf
from tests.metrics import helpers

BACKENDS = ('sqlite',)
ALICE = {'X-User-Id': 'alice', 'X-Project-Id': 'proj-a',
         'X-Roles': 'member,reader'}
ADMIN = {'X-User-Id': 'root', 'X-Project-Id': 'admin-proj',
         'X-Roles': 'admin'}
REQUESTS = 'freezer_api_http_requests_total'


def metrics_conf(tmp_path, **overrides):
    settings = {'metrics.enabled': True,
                'metrics.multiprocess_dir': helpers.process_dir(),
                'metrics.allowed_addresses': ['127.0.0.1/32', '::1'],
                'metrics.store_cache_seconds': 0.0}
    settings.update(overrides)
    return make_conf(tmp_path, **settings)


@pytest.fixture
def make_client(tmp_path, storage, clock, policy_enforcer, monkeypatch):
    # every scrape reads the store again (store_cache_seconds = 0), however
    # long counting took
    monkeypatch.setattr(store, 'READING_SHARE', 0.0)

    def make(**overrides):
        conf = metrics_conf(tmp_path, **overrides)
        app = app_module.create_app(conf, storage, enforcer=policy_enforcer,
                                    clock=clock)
        return falcon.testing.TestClient(
            context.NoAuthMiddleware(app, conf))
    return make


def scrape(client, remote_addr='127.0.0.1', **kwargs):
    answer = client.simulate_get('/metrics', remote_addr=remote_addr,
                                 **kwargs)
    assert answer.status_code == 200, answer.text
    assert answer.headers['content-type'].startswith('text/plain')
    return answer.text


def test_disabled_by_default_answers_404(client):
    answer = client.simulate_get('/metrics')
    assert answer.status_code == 404
    assert answer.json['title']


def test_requests_counted_by_route_template(make_client):
    client = make_client()
    before = helpers.parse(scrape(client))
    created = client.simulate_post('/v2/proj-a/clients', headers=ALICE,
                                   json={'client_id': 'proj-a_node1'})
    assert created.status_code == 201, created.text
    for _ in range(2):
        assert client.simulate_get('/v1/clients', headers=ALICE
                                   ).status_code == 200
    missing = client.simulate_get('/v2/proj-a/clients/nope', headers=ALICE)
    assert missing.status_code == 404
    text = scrape(client)
    after = helpers.parse(text)

    def delta(name, **labels):
        return (helpers.value(after, name, **labels)
                - helpers.value(before, name, **labels))

    assert delta(REQUESTS, route='/v2/{project_id}/clients', method='POST',
                 status='201') == 1
    assert delta(REQUESTS, route='/v1/clients', method='GET',
                 status='200') == 2
    assert delta(REQUESTS, route='/v2/{project_id}/clients/{client_id}',
                 method='GET', status='404') == 1
    assert delta('freezer_api_http_request_duration_seconds_count',
                 route='/v1/clients', method='GET') == 2
    assert delta('freezer_api_http_request_duration_seconds_bucket',
                 route='/v1/clients', method='GET', le='+Inf') == 2
    # the URL's project and ids never become labels
    routes = {dict(labels).get('route') for _, labels in after}
    assert not any('proj-a' in route or 'node1' in route
                   for route in routes if route)


def test_store_figures_by_kind_and_state(make_client):
    client = make_client()
    assert client.simulate_post('/v2/proj-a/clients', headers=ALICE, json={
        'client_id': 'proj-a_node1'}).status_code == 201
    for _ in range(2):
        created = client.simulate_post('/v2/proj-a/jobs', headers=ALICE,
                                       json={'client_id': 'proj-a_node1',
                                             'description': 'nightly',
                                             'job_actions': []})
        assert created.status_code == 201, created.text
    samples = helpers.parse(scrape(client))
    assert helpers.value(samples, 'freezer_api_store_figures_up') == 1
    assert helpers.value(samples, 'freezer_api_documents',
                         kind='clients') == 1
    assert helpers.value(samples, 'freezer_api_documents', kind='jobs') == 2
    assert helpers.value(samples, 'freezer_api_documents',
                         kind='backups') == 0
    jobs = {dict(labels)['status']: value
            for (name, labels), value in samples.items()
            if name == 'freezer_api_jobs'}
    assert sum(jobs.values()) == 2
    assert set(jobs) >= {'', 'scheduled', 'running', 'stop', 'other'}


def test_store_errors_and_503_counted(make_client, storage, monkeypatch):
    client = make_client()
    before = helpers.parse(scrape(client))

    def unavailable(*args, **kwargs):
        raise storage_errors.Unavailable('down')

    monkeypatch.setattr(storage, 'list', unavailable)
    answer = client.simulate_get('/v1/clients', headers=ALICE)
    assert answer.status_code == 503
    after = helpers.parse(scrape(client))
    assert (helpers.value(after, 'freezer_api_store_errors_total',
                          error='unavailable')
            - helpers.value(before, 'freezer_api_store_errors_total',
                            error='unavailable')) == 1
    assert (helpers.value(after, REQUESTS, route='/v1/clients',
                          method='GET', status='503')
            - helpers.value(before, REQUESTS, route='/v1/clients',
                            method='GET', status='503')) == 1
    # the scrape still answers, saying the store figures are missing
    assert helpers.value(after, 'freezer_api_store_figures_up') == 0
    assert ('freezer_api_documents', frozenset({('kind', 'jobs')})
            ) not in after


@pytest.mark.parametrize('address', ['10.1.2.3', '2001:db8::5'])
def test_other_addresses_need_an_admin(make_client, address):
    client = make_client()
    denied = client.simulate_get('/metrics', remote_addr=address,
                                 headers=ALICE)
    assert denied.status_code == 403
    assert 'freezer_api' not in denied.text
    allowed = client.simulate_get('/metrics', remote_addr=address,
                                  headers=ADMIN)
    assert allowed.status_code == 200
    assert REQUESTS in allowed.text


def test_allowed_network_needs_no_token(make_client):
    client = make_client(**{'metrics.allowed_addresses': ['10.0.0.0/8']})
    assert client.simulate_get('/metrics', remote_addr='10.200.3.4',
                               headers=ALICE).status_code == 200
    assert client.simulate_get('/metrics', remote_addr='127.0.0.1',
                               headers=ALICE).status_code == 403


def test_no_identity_is_401(tmp_path, storage, clock, policy_enforcer):
    conf = metrics_conf(tmp_path)
    # the bare app: no identity middleware, as keystone without a token
    client = falcon.testing.TestClient(app_module.create_app(
        conf, storage, enforcer=policy_enforcer, clock=clock))
    assert client.simulate_get('/metrics', remote_addr='10.1.2.3'
                               ).status_code == 401
    assert client.simulate_get('/metrics', remote_addr='127.0.0.1'
                               ).status_code == 200


def test_configured_path(make_client):
    client = make_client(**{'metrics.path': '/internal/prometheus'})
    assert client.simulate_get('/metrics').status_code == 404
    assert REQUESTS in scrape_at(client, '/internal/prometheus')


def scrape_at(client, path):
    answer = client.simulate_get(path, remote_addr='127.0.0.1')
    assert answer.status_code == 200, answer.text
    return answer.text


@pytest.mark.parametrize('path', ['/v2', '/v1/metrics', '/healthcheck',
                                  '/openapi.json'])
def test_path_of_the_api_refused(make_client, path):
    with pytest.raises(RuntimeError, match='taken by the API'):
        make_client(**{'metrics.path': path})


def test_health_figures_only_from_a_provider(make_client):
    client = make_client()
    names = helpers.families(scrape(client))
    assert not set(names) & set(figures.FAMILIES)

    @figures.provider
    def fake(storage):
        return {'freezer_backup_missed_runs': [
            ({'project': 'proj-a', 'reason': 'client_offline'}, 3)]}

    try:
        samples = helpers.parse(scrape(client))
    finally:
        figures.unregister(fake)
    assert helpers.value(samples, 'freezer_backup_missed_runs',
                         project='proj-a', reason='client_offline') == 3


def test_health_figures_of_the_service(make_client, clock):
    # a scheduler that polls, runs one job well and one badly, then goes
    # silent for three intervals (as in tests/api/test_coverage.py)
    from tests.api.helpers import Api
    from tests.api.test_job_runs import INTERVAL
    from tests.api.test_job_runs import Scheduler
    client = make_client(**{'health.missed_grace': 60,
                            'health.client_offline_after': 120,
                            'health.presence_flush_interval': 0})
    sched = Scheduler(Api(client, 'v2'), clock)
    good = sched.job(description='good')
    bad = sched.job(description='bad', rpo=900)
    clock.advance(INTERVAL)
    sched.poll()
    sched.run(good, seconds=20)
    sched.run(bad, 'fail', seconds=20)
    samples = helpers.parse(scrape(client))
    project = 'proj-a'
    assert helpers.value(samples, 'freezer_backup_runs', project=project,
                         result='success') == 1
    assert helpers.value(samples, 'freezer_backup_runs', project=project,
                         result='fail') == 1
    assert helpers.value(samples, 'freezer_backup_rpo_breaches',
                         project=project) == 0
    assert ('freezer_backup_clients_offline', frozenset(
        {'project': project}.items())) in samples

    clock.advance(3 * INTERVAL)
    samples = helpers.parse(scrape(client))
    assert helpers.value(samples, 'freezer_backup_rpo_breaches',
                         project=project) == 2
    assert helpers.value(samples, 'freezer_backup_clients_offline',
                         project=project) == 1
    assert helpers.value(samples, 'freezer_backup_missed_runs',
                         project=project, reason='client_offline') >= 2
    # what GET /coverage says, the figures say
    answer = client.simulate_get('/v2/proj-a/coverage', headers=ALICE).json
    assert answer['summary']['breached'] == 2
    assert helpers.value(samples, 'freezer_backup_stale_runs',
                         project=project) == answer['summary']['stale']


def test_served_openapi_document_has_the_metrics_route(make_client):
    from openapi_spec_validator import validate

    client = make_client(**{'metrics.path': '/internal/prometheus'})
    doc = client.simulate_get('/openapi.json').json
    validate(doc)
    operation = doc['paths']['/internal/prometheus']['get']
    assert operation['x-policy-rule'] == 'metrics:get'
    assert {} in operation['security']
    assert '/metrics' not in doc['paths']


def test_openapi_document_without_metrics_while_disabled(client):
    doc = client.simulate_get('/openapi.json').json
    assert not [path for path in doc['paths'] if 'metrics' in path]


def test_no_peer_address_is_not_loopback(make_client):
    client = make_client()
    # a server that gives no REMOTE_ADDR: not taken for an allowed one
    answer = client.simulate_get('/metrics', headers=ALICE,
                                 extras={'REMOTE_ADDR': ''})
    assert answer.status_code == 403
