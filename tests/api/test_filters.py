"""The pipeline's request-id and proxy-header filters (api/filters.py)."""

import re
import uuid

import pytest

from freezer_api.api import filters

ID = re.compile(r'^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-'
                r'[0-9a-f]{12}$')


def _run(middleware_factory, environ=None, headers=None):
    seen = {}

    def inner(env, start_response):
        seen.update(env)
        start_response('200 OK', list(headers or []))
        return [b'ok']

    answered = {}

    def start_response(status, response_headers, exc_info=None):
        answered['status'] = status
        answered['headers'] = response_headers

    env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'SCRIPT_NAME': '',
           'wsgi.url_scheme': 'http', 'HTTP_HOST': 'api:9090',
           'REMOTE_ADDR': '10.0.0.9'}
    env.update(environ or {})
    body = b''.join(middleware_factory(inner)(env, start_response))
    assert body == b'ok'
    return seen, dict(answered['headers'])


def test_every_answer_gets_a_fresh_request_id_also_in_the_environ():
    seen, headers = _run(filters.RequestId)
    assert ID.match(headers['x-openstack-request-id'])
    assert seen['openstack.request_id'] == headers['x-openstack-request-id']
    again, _ = _run(filters.RequestId)
    assert again['openstack.request_id'] != seen['openstack.request_id']
    assert 'openstack.global_request_id' not in seen


def test_a_well_formed_inbound_id_becomes_the_global_request_id():
    inbound = f'req-{uuid.uuid4()}'
    seen, headers = _run(filters.RequestId,
                         {'HTTP_X_OPENSTACK_REQUEST_ID': inbound})
    assert seen['openstack.global_request_id'] == inbound
    # the local id is still this service's own
    assert headers['x-openstack-request-id'] != inbound


@pytest.mark.parametrize('inbound', ['req-1', 'x' * 5000,
                                     f'req-{uuid.uuid4()}\n',
                                     f'REQ-{uuid.uuid4()}'],
                         # stable names: pytest-xdist compares collections
                         ids=['short', 'long', 'newline', 'upper-case'])
def test_a_malformed_inbound_id_is_ignored(inbound):
    seen, _ = _run(filters.RequestId, {'HTTP_X_OPENSTACK_REQUEST_ID': inbound})
    assert 'openstack.global_request_id' not in seen


def test_an_id_set_by_the_app_is_not_repeated():
    _, headers = _run(filters.RequestId,
                      headers=[('X-OpenStack-Request-Id', 'req-mine')])
    assert headers == {'X-OpenStack-Request-Id': 'req-mine'}


FORWARDED = {
    'HTTP_X_FORWARDED_PROTO': 'https',
    'HTTP_X_FORWARDED_HOST': 'backup.example.com',
    'HTTP_X_FORWARDED_FOR': '192.0.2.7, 10.0.0.1',
    'HTTP_X_FORWARDED_PREFIX': '/backup/',
}


def test_proxy_headers_are_ignored_unless_enabled():
    seen, _ = _run(lambda app: filters.ProxyHeaders(app, False), FORWARDED)
    assert (seen['wsgi.url_scheme'], seen['HTTP_HOST'], seen['REMOTE_ADDR'],
            seen['SCRIPT_NAME']) == ('http', 'api:9090', '10.0.0.9', '')


def test_x_forwarded_headers_when_enabled():
    seen, _ = _run(lambda app: filters.ProxyHeaders(app, True), FORWARDED)
    assert (seen['wsgi.url_scheme'], seen['HTTP_HOST'], seen['REMOTE_ADDR'],
            seen['SCRIPT_NAME']) == ('https', 'backup.example.com',
                                     '192.0.2.7', '/backup')


def test_rfc7239_forwarded_wins_and_its_first_proxy_counts():
    seen, _ = _run(lambda app: filters.ProxyHeaders(app, True), {
        'HTTP_FORWARDED': 'for=192.0.2.60;proto=https;host="b.example";'
                          'by=203.0.113.43, for=198.51.100.17;proto=http',
        **FORWARDED})
    assert (seen['wsgi.url_scheme'], seen['HTTP_HOST'],
            seen['REMOTE_ADDR']) == ('https', 'b.example', '192.0.2.60')


def test_a_forwarded_scheme_other_than_http_or_https_is_ignored():
    seen, _ = _run(lambda app: filters.ProxyHeaders(app, True),
                   {'HTTP_X_FORWARDED_PROTO': 'javascript'})
    assert seen['wsgi.url_scheme'] == 'http'


# -- in the shipped pipeline ------------------------------------------------

def _pipeline(tmp_path, parsing):
    import falcon.testing

    from freezer_api import bootstrap
    from freezer_api.cmd import common
    from tests.fixtures import servers

    config = servers.write_config(
        tmp_path / 'freezer-api.conf', f'sqlite:///{tmp_path}/f.sqlite',
        extra=f'[oslo_middleware]\nenable_proxy_headers_parsing = {parsing}\n')
    conf = common.load_config(['--config-file', str(config)],
                              default_files=[])
    app = bootstrap.load_application(conf)
    return falcon.testing.TestClient(
        lambda environ, start_response: app(environ, start_response))


@pytest.mark.parametrize('parsing', [True, False])
def test_the_service_option_switches_proxy_parsing_in_the_pipeline(
        tmp_path, parsing):
    http = _pipeline(tmp_path, parsing)
    answer = http.simulate_get('/', headers={
        'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'b.example',
        'X-Forwarded-Prefix': '/backup'})
    assert answer.status_code == 300
    assert ID.match(answer.headers['x-openstack-request-id'])
    hrefs = [link['href'] for version in answer.json['versions']
             for link in version['links']]
    expected = ('https://b.example/backup/' if parsing
                else 'http://falconframework.org/')
    assert hrefs and all(href.startswith(expected) for href in hrefs), hrefs
