"""Hostile input on every route of v1 and v2 (issue 7, spec D3).

The route table is taken from the application itself
(``routes.resource_routes`` and the responders of each resource), so a new
route is attacked as soon as it exists. For every route and every hostile
input the service must answer a 4xx with a JSON ``title``/``description``,
store nothing, and stay healthy. Each backend runs the whole sweep in one
test: the inputs are many and a test per input would spend its time in
fixtures.
"""

import json
import types

import pytest

from freezer_api.api import routes
from tests.api import helpers

MiB = 1024 * 1024
BACKENDS = ('sqlite', 'postgresql', 'elasticsearch')

# Bodies that no route may accept. (name, raw bytes)
DEEP = 10_000
HOSTILE_BODIES = [
    ('array', b'[]'),
    ('array-of-object', b'[{"description": "x"}]'),
    ('string', b'"a string"'),
    ('number', b'42'),
    ('negative-float', b'-1.5'),
    ('true', b'true'),
    ('nested-arrays-10000', b'[' * DEEP + b']' * DEEP),
    ('nested-objects-10000', b'{"a":' * DEEP + b'1' + b'}' * DEEP),
    ('nested-in-field-10000',
     b'{"description": ' + b'[' * DEEP + b']' * DEEP + b'}'),
    ('body-10MB', b'{"description": "' + b'x' * (10 * MiB) + b'"}'),
    ('garbage-10MB', b'\xff' * (10 * MiB)),
    ('invalid-utf8', b'{"description": "\xff\xfe\xc3"}'),
    ('invalid-utf8-key', b'{"\xc3\x28": 1}'),
    ('overlong-utf8', b'{"description": "\xc0\xaf"}'),
    ('nul-escaped', b'{"description": "a\\u0000b"}'),
    ('nul-raw', b'{"description": "a\x00b"}'),
    ('nul-in-key', b'{"a\\u0000": 1}'),
    ('lone-surrogate', b'{"description": "\\ud800"}'),
    ('huge-int-5000-digits', b'{"max_retries": ' + b'9' * 5000 + b'}'),
    ('huge-float', b'{"max_retries": 1e400}'),
    ('nan', b'{"max_retries": NaN}'),
    ('infinity', b'{"max_retries": -Infinity}'),
    ('truncated', b'{"description": "x"'),
    ('trailing-garbage', b'{"description": "x"} xyz'),
    ('bom-and-garbage', b'\xef\xbb\xbf{'),
    ('duplicate-nul-keys', b'{"\\u0000": 1, "\\u0000": 2}'),
]

# Ids that name nothing; every route must answer 404 (or 400) for them.
ODD_IDS = ['été', '日本語', '😀', '\u202e\u0041', 'a b', '..', '%00',
           'x' * 5000, '%ff%fe', "' OR '1'='1", '{"$ne": null}', '*',
           '_all', 'jobs/1', 'nul%00x', '-1', '0' * 40]

# Repeated or out-of-range query parameters on collections.
BAD_QUERIES = ['limit=1&limit=2', 'offset=0&offset=1', 'limit=0',
               'limit=1001', 'limit=-1', 'offset=-1', 'limit=abc',
               f'limit={10 ** 30}', 'limit=1e3', 'limit=\u00b2',
               'limit=%00', 'limit=%ff', 'offset=' + '9' * 5000]
JOB_QUERIES = ['all_projects=true&all_projects=false', 'all_projects=maybe']

# What a GET body on a collection may not be: each is a 400.
BAD_SEARCHES = [b'[]', b'"x"', b'5', b'{"match": "x"}', b'{"unknown": []}',
                b'{"match": [{"a": []}]}', b'{"match": [5]}',
                b'[' * DEEP + b']' * DEEP, b'\xff',
                b'{"match": [{"a\\u0000": 1}]}',
                b'{"time_after": ' + b'9' * 5000 + b'}']


def route_table():
    """[(template, method, reads_body)] of one API version."""
    fake_conf = types.SimpleNamespace(
        api=types.SimpleNamespace(max_request_body_size=MiB))
    table = []
    for template, resource in routes.resource_routes(None, fake_conf):
        for method in ('GET', 'POST', 'PUT', 'PATCH', 'DELETE'):
            if hasattr(resource, f'on_{method.lower()}'):
                reads_body = method in ('POST', 'PATCH') or (
                    method == 'GET' and ('{' not in template
                                         or template in BODY_READING_GETS))
                table.append((template, method, reads_body))
    return table


# GETs of an item that take a search document (lists all do).
BODY_READING_GETS = ('/jobs/{job_id}/runs',)

ROUTES = route_table()


def test_route_table_is_complete():
    # 16 templates; a route lost from the table would escape the sweep
    assert len({t for t, _, _ in ROUTES}) == 16
    assert len(ROUTES) == 35


@pytest.fixture
def world(client):
    """One document of each kind, in each scope the sweep uses."""
    api = helpers.Api(client, 'v2')
    client_id = helpers.register_client(api, 'node1')
    job_id = helpers.make_job(api, client_id)
    session_id = helpers.make_session(api)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    return {'backup_id': helpers.make_backup(api), 'client_id': client_id,
            'job_id': job_id, 'action_id': helpers.make_action(api),
            'session_id': session_id}


class Sweep:
    """Sends requests, checks each answer, counts what was tried."""

    def __init__(self, client, figures):
        self.client = client
        self.figures = figures
        self.failures = []
        self.owner = helpers.Api(client, 'v2')
        self.apis = [helpers.Api(client, 'v1'), self.owner]

    def send(self, api, method, path, body=None, query=None,
             allowed=range(400, 500), headers=None):
        all_headers = dict(api.headers)
        all_headers.update(headers or {})
        kwargs = {}
        if body is not None:
            kwargs['body'] = body
        if query is not None:
            kwargs['query_string'] = query
        resp = self.client.simulate_request(method, path,
                                            headers=all_headers, **kwargs)
        self.figures.add('requests')
        what = (api.version, method, path[:80],
                (body or b'')[:60], query and query[:60])
        if resp.status_code not in allowed:
            self.failures.append((what, resp.status_code, resp.text[:300]))
        elif resp.status_code >= 400:
            try:
                helpers.assert_error(resp, resp.status_code)
            except AssertionError as ex:
                self.failures.append((what, 'bad error body', str(ex)))
        return resp

    def check_unchanged(self, before, label):
        after = helpers.snapshot(self.owner)
        if after != before:
            self.failures.append((label, 'store changed', ''))
        health = self.client.simulate_get('/healthcheck')
        if health.status_code != 200:
            self.failures.append((label, 'unhealthy', health.text))

    def report(self):
        assert not self.failures, '\n'.join(
            repr(f) for f in self.failures[:40])


def _path(api, template, ids):
    return api.path(*template.format(**ids).strip('/').split('/'))


def test_hostile_inputs_on_every_route(client, world, storage_backend,
                                       figures):
    sweep = Sweep(client, figures)
    before = helpers.snapshot(sweep.owner)

    # 1. Bodies no route accepts, on every route that reads a body.
    for name, raw in HOSTILE_BODIES:
        for api in sweep.apis:
            for template, method, reads_body in ROUTES:
                if not reads_body:
                    continue
                sweep.send(api, method, _path(api, template, world), raw,
                           headers={'Content-Type': 'application/json'})
                figures.add('hostile inputs')
        sweep.check_unchanged(before, name)

    # 2. Odd ids on every item route, with a valid-looking body.
    for odd in ODD_IDS:
        for api in sweep.apis:
            for template, method, _ in ROUTES:
                if '{' not in template:
                    continue
                ids = {key: odd for key in world}
                body = b'{"description": "x"}' if method in (
                    'POST', 'PATCH') else None
                if template.endswith('/action'):
                    body = json.dumps({'start': {
                        'job_id': odd, 'current_tag': 0}}).encode()
                elif template.endswith('/event'):
                    body = b'{"start": null}'
                sweep.send(api, method, _path(api, template, ids), body)
                figures.add('hostile inputs')
    # ... and odd ids of one part with real ids of the others
    for odd in ODD_IDS[:6]:
        for api in sweep.apis:
            for template in ('/sessions/{session_id}/jobs/{job_id}',):
                for key in ('session_id', 'job_id'):
                    ids = dict(world, **{key: odd})
                    for method in ('PUT', 'DELETE'):
                        sweep.send(api, method, _path(api, template, ids))
                        figures.add('hostile inputs')
    sweep.check_unchanged(before, 'odd ids')

    # 3. Repeated and malformed query parameters on every collection.
    for api in sweep.apis:
        for template, method, _ in ROUTES:
            if method != 'GET' or '{' in template:
                continue
            queries = BAD_QUERIES + (JOB_QUERIES if template == '/jobs'
                                     else [])
            for query in queries:
                sweep.send(api, 'GET', _path(api, template, world),
                           query=query)
                figures.add('hostile inputs')
            for raw in BAD_SEARCHES:
                sweep.send(api, 'GET', _path(api, template, world), raw)
                figures.add('hostile inputs')
    sweep.check_unchanged(before, 'queries')

    # 4. A GET with a body on every route: collections read it as a search
    # (garbage is a 400), items ignore it, routes without GET answer 405.
    templates = sorted({t for t, _, _ in ROUTES})
    getters = {t for t, m, _ in ROUTES if m == 'GET'}
    for api in sweep.apis:
        for template in templates:
            path = _path(api, template, world)
            for raw in (b'{"match": [{"a": 1}]}', b'[1, 2]', b'\x00\xff',
                        b'{"description": "' + b'x' * (2 * MiB) + b'"}'):
                if template not in getters:
                    expected = {405}
                elif '{' not in template or template in BODY_READING_GETS:
                    expected = ({200} if raw.startswith(b'{"match"')
                                else {400, 413})
                else:
                    expected = {200}
                resp = sweep.send(api, 'GET', path, raw, allowed=expected)
                figures.add('hostile inputs')
                if resp.status_code == 405 and 'allow' not in resp.headers:
                    sweep.failures.append((path, '405 without Allow', ''))
    sweep.check_unchanged(before, 'GET bodies')

    # 5. Headers: a non-JSON Accept, absurd If-Match, odd identities.
    for api in sweep.apis:
        for template, method, _ in ROUTES:
            path = _path(api, template, world)
            sweep.send(api, method, path, headers={'Accept': 'text/html'},
                       allowed={406})
            figures.add('hostile inputs')
            if method in ('PATCH',) or (method == 'POST' and '{' in template
                                        and template.count('/') == 2):
                for tag in ('abc', '-1', '9' * 5000, '"1.5"', '\u00b2',
                            '\u0663'):
                    sweep.send(api, method, path, b'{"description": "x"}',
                               headers={'If-Match': tag})
                    figures.add('hostile inputs')
    sweep.check_unchanged(before, 'headers')

    # 6. Numbers where integers are expected: session tags and offsets.
    for api in sweep.apis:
        path = _path(api, '/sessions/{session_id}/action', world)
        for tag in ('\u00b2', '\u0663', '9' * 5000, '-0', '1e3', 10 ** 30,
                    -1, 1.5, True, None, [], {}, ' ', '0x10'):
            for action in ('start', 'end'):
                if tag == 10 ** 30 and action == 'end':
                    continue  # a valid tag of another run: out-of-sync
                body = {action: {'job_id': world['job_id'],
                                 'current_tag': tag, 'result': 'success'}}
                sweep.send(api, 'POST', path, json.dumps(body).encode())
                figures.add('hostile inputs')
        for template, method, _ in ROUTES:
            if method == 'GET' and '{' not in template:
                # a huge offset is a valid, empty page (or a 400)
                resp = sweep.send(api, 'GET', _path(api, template, world),
                                  query=f'offset={10 ** 30}',
                                  allowed={200, 400})
                figures.add('hostile inputs')
                # (the coverage pages its jobs; its summary stays)
                page = ([resp.json.get('jobs')] if template == '/coverage'
                        else resp.json.values())
                if resp.status_code == 200 and any(page):
                    sweep.failures.append((template, 'huge offset', ''))
    sweep.check_unchanged(before, 'integers')

    sweep.report()
    assert helpers.snapshot(sweep.owner) == before


@pytest.mark.parametrize('project', ['a b', 'été', '../proj-a', 'x' * 300,
                                     'proj-a%00', '%2e%2e'])
def test_odd_url_projects_are_refused(client, world, project, figures):
    sweep = Sweep(client, figures)
    api = helpers.Api(client, 'v2', url_project=project)
    before = helpers.snapshot(sweep.owner)
    for template, method, _ in ROUTES:
        body = (b'{"description": "x"}' if method in ('POST', 'PATCH')
                else None)
        sweep.send(api, method, _path(api, template, world), body)
    sweep.check_unchanged(before, project)
    sweep.report()
