"""Bad input on every route that takes a body (spec §1.1, §5.3, D3, D17).

Each case must answer a 4xx with a JSON ``title``/``description`` (never a
5xx) and leave every document exactly as it was.
"""

import json

import pytest

from tests.api import helpers
from tests.api.helpers import assert_client_error
from tests.api.helpers import assert_error

MiB = 1024 * 1024

# NOTE: these inputs are refused before any storage call; the SQL engines
# stand for all (Elasticsearch runs every other HTTP module and the whole
# storage contract, including NUL ids).
BACKENDS = ('sqlite', 'postgresql')


@pytest.fixture
def world(api):
    """One document of each kind; the job is a member of the session."""
    client_id = helpers.register_client(api, 'node1')
    job_id = helpers.make_job(api, client_id)
    session_id = helpers.make_session(api)
    assert api.put('sessions', session_id, 'jobs', job_id).status_code == 204
    return {'backup': helpers.make_backup(api), 'client': client_id,
            'job': job_id, 'action': helpers.make_action(api),
            'session': session_id}


# (name, method, path template, valid body builder, string setter)
def _set(path):
    def setter(body, value):
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body
    return setter


ROUTES = [
    ('create-backup', 'POST', 'backups',
     lambda w: helpers.backup_body(), _set(['note'])),
    ('patch-backup', 'PATCH', 'backups/{backup}',
     lambda w: {'status': 'available'}, _set(['status'])),
    ('create-client', 'POST', 'clients',
     lambda w: {'client_id': 'new-node', 'description': 'd'},
     _set(['description'])),
    ('patch-client', 'PATCH', 'clients/{client}',
     lambda w: {'description': 'd'}, _set(['description'])),
    ('create-job', 'POST', 'jobs',
     lambda w: helpers.job_body(w['client']), _set(['description'])),
    ('replace-job', 'POST', 'jobs/{job}',
     lambda w: helpers.job_body(w['client']), _set(['description'])),
    ('patch-job', 'PATCH', 'jobs/{job}',
     lambda w: {'description': 'd'}, _set(['description'])),
    ('job-event', 'POST', 'jobs/{job}/event',
     lambda w: {'abort': None}, _set(['abort'])),
    ('create-action', 'POST', 'actions',
     lambda w: helpers.action_body(),
     _set(['freezer_action', 'backup_name'])),
    ('replace-action', 'POST', 'actions/{action}',
     lambda w: helpers.action_body(),
     _set(['freezer_action', 'backup_name'])),
    ('patch-action', 'PATCH', 'actions/{action}',
     lambda w: {'freezer_action': {'backup_name': 'x'}},
     _set(['freezer_action', 'backup_name'])),
    ('create-session', 'POST', 'sessions',
     lambda w: helpers.session_body(), _set(['description'])),
    ('replace-session', 'POST', 'sessions/{session}',
     lambda w: helpers.session_body(), _set(['description'])),
    ('patch-session', 'PATCH', 'sessions/{session}',
     lambda w: {'description': 'd'}, _set(['description'])),
    ('session-action', 'POST', 'sessions/{session}/action',
     lambda w: {'start': {'job_id': w['job'], 'current_tag': 0}},
     _set(['start', 'job_id'])),
]
ROUTE_IDS = [r[0] for r in ROUTES]
CREATE_ROUTES = [r for r in ROUTES if r[0].startswith('create-')]


def _send(api, world, route, **kw):
    _, method, template, _, _ = route
    path = template.format(**world)
    return api.call(method, *path.split('/'), **kw)


def _refused(api, world, route, **kw):
    before = helpers.snapshot(api)
    resp = _send(api, world, route, **kw)
    assert_client_error(resp)
    assert helpers.snapshot(api) == before
    return resp


def test_routes_accept_their_valid_bodies(api, world):
    """Sanity check of the table below: valid bodies succeed."""
    for route in ROUTES:
        body = route[3](world)
        resp = _send(api, world, route, json=body)
        assert resp.status_code in (200, 201, 202), (route[0], resp.text)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize('raw', [
    '{', '{"a": }', '{"a": 1,}', "{'a': 1}", '{"a": 1} trailing',
    'nul', '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}',
    '\ufeff{"a": 1}', '{"a": "\\x"}', '{"a": "\\ud800"',
])
def test_malformed_json_is_400(api, world, route, raw):
    resp = _refused(api, world, route, body=raw,
                    headers={'Content-Type': 'application/json'})
    assert_error(resp, 400)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
def test_invalid_utf8_is_400(api, world, route):
    resp = _refused(api, world, route, body=b'{"description": "\xff\xfe"}')
    assert_error(resp, 400)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize('body', [[], [{}], ['x'], 'text', '', 0, 5, -1.5,
                                  True, False, None],
                         ids=lambda b: repr(b))
def test_non_object_body_is_400(api, world, route, body):
    resp = _refused(api, world, route, json=body)
    assert_error(resp, 400)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
def test_wrapped_valid_body_in_array_is_400(api, world, route):
    resp = _refused(api, world, route, json=[route[3](world)])
    assert_error(resp, 400)


BODY_ROUTES = [r for r in ROUTES if r[1] != 'PATCH']
PATCH_ROUTES = [r for r in ROUTES if r[1] == 'PATCH']


@pytest.mark.parametrize('route', BODY_ROUTES,
                         ids=[r[0] for r in BODY_ROUTES])
@pytest.mark.parametrize('raw', ['', '   ', '\n'])
def test_missing_body_is_400(api, world, route, raw):
    resp = _refused(api, world, route, body=raw)
    assert_error(resp, 400)


@pytest.mark.parametrize('route', PATCH_ROUTES,
                         ids=[r[0] for r in PATCH_ROUTES])
@pytest.mark.parametrize('raw', [None, '', '   ', '\n', '{}'])
def test_patch_without_body_changes_nothing(api, world, route, raw):
    # spec §1.1: no body is {}; upstream answers 200 and changes nothing
    before = helpers.snapshot(api)
    resp = _send(api, world, route, body=raw)
    assert resp.status_code == 200, resp.text
    kind = route[2].split('/')[0]
    doc_id = world[route[2].split('{')[1].rstrip('}')]
    version = before[kind][doc_id]['_version']
    assert resp.json == {helpers.ID_FIELDS[kind]: doc_id,
                         'version': version}
    assert helpers.snapshot(api) == before


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize('value', ['a\u0000b', '\u0000', '\ud800',
                                   'x\udfffy', '\udbff\udbff'],
                         ids=['nul-inside', 'nul', 'high-surrogate',
                              'low-surrogate', 'two-high'])
def test_bad_strings_are_400(api, world, route, value):
    body = route[4](route[3](world), value)
    text = json.dumps(body)
    assert '\\u' in text
    resp = _refused(api, world, route, body=text)
    assert_error(resp, 400)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize('key', ['k\u0000', '\ud800'])
def test_bad_strings_in_keys_are_400(api, world, route, key):
    body = route[3](world)
    body[key] = 'x'
    resp = _refused(api, world, route, body=json.dumps(body))
    assert_error(resp, 400)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize('shape', ['array', 'object'])
def test_deep_nesting_is_400(api, world, route, shape):
    depth = 5000
    if shape == 'array':
        deep = '[' * depth + ']' * depth
    else:
        deep = '{"a": ' * depth + '1' + '}' * depth
    body = json.dumps(route[4](route[3](world), 'PLACEHOLDER'))
    body = body.replace('"PLACEHOLDER"', deep)
    resp = _refused(api, world, route, body=body)
    assert_error(resp, 400)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
def test_moderate_nesting_in_free_field_never_500(api, world, route):
    depth = 100
    deep = '{"a": ' * depth + '1' + '}' * depth
    body = json.dumps(route[4](route[3](world), 'PLACEHOLDER'))
    resp = _send(api, world, route, body=body.replace('"PLACEHOLDER"', deep))
    assert resp.status_code < 500, resp.text


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
def test_body_too_large_is_413(api, world, route):
    body = route[4](route[3](world), 'x' * (MiB + 1))
    resp = _refused(api, world, route, json=body)
    assert_error(resp, 413)


@pytest.mark.parametrize('route', ROUTES, ids=ROUTE_IDS)
def test_garbage_too_large_is_413(api, world, route):
    resp = _refused(api, world, route, body=b'\x00' * (MiB + 10))
    assert_error(resp, 413)


def test_body_just_under_the_limit_is_read(api):
    body = helpers.backup_body(note='')
    overhead = len(json.dumps(body))
    body['note'] = 'x' * (MiB - overhead - 10)
    resp = api.post('backups', json=body)
    assert resp.status_code == 201, resp.text[:200]


@pytest.mark.parametrize('kind', helpers.KINDS)
@pytest.mark.parametrize('raw', [
    '{', '[', '{"match": [{"a": 1}]', '"text"', '[1, 2]', '5',
    '{"match": ' + '[' * 5000 + ']' * 5000 + '}',
    b'{"match": [{"a": "\xff"}]}',
])
def test_bad_search_body_is_400(api, kind, raw):
    helpers.make_backup(api)
    assert_error(api.get(kind, body=raw), 400)


@pytest.mark.parametrize('kind', helpers.KINDS)
def test_search_body_too_large_is_413(api, kind):
    search = {'match': [{'_all': 'x' * (MiB + 1)}]}
    assert_error(api.get(kind, json=search), 413)


# D17: Content-Type is not enforced ------------------------------------------

@pytest.mark.parametrize('route', CREATE_ROUTES,
                         ids=[r[0] for r in CREATE_ROUTES])
@pytest.mark.parametrize('content_type', [None, 'text/plain',
                                          'application/x-www-form-urlencoded',
                                          'application/json; charset=utf-8'])
def test_post_without_json_content_type(api, world, route, content_type):
    body = route[3](world)
    if route[0] == 'create-client':
        body['client_id'] = 'ct-node'
    headers = {} if content_type is None else {
        'Content-Type': content_type}
    resp = _send(api, world, route, body=json.dumps(body), headers=headers)
    assert resp.status_code == 201, resp.text
    if content_type is None:
        assert 'content-type' not in {k.lower() for k in headers}


def test_patch_and_events_without_content_type(api, world):
    resp = api.patch('jobs', world['job'],
                     body=json.dumps({'description': 'no ct'}))
    assert resp.status_code == 200, resp.text
    resp = api.post('jobs', world['job'], 'event',
                    body=json.dumps({'stop': None}))
    assert resp.status_code == 202, resp.text
    resp = api.post('sessions', world['session'], 'action',
                    body=json.dumps({'start': {'job_id': world['job'],
                                               'current_tag': 0}}))
    assert resp.status_code == 202, resp.text


# Huge numbers ---------------------------------------------------------------

HUGE = 10 ** 30


@pytest.mark.parametrize('kind,body_of,path', [
    ('backups', lambda w: helpers.backup_body(time_stamp=HUGE),
     ['backup_metadata', 'time_stamp']),
    ('backups', lambda w: helpers.backup_body(total_fs_files=-HUGE),
     ['backup_metadata', 'total_fs_files']),
    ('backups', lambda w: helpers.backup_body(custom=HUGE ** 10),
     ['backup_metadata', 'custom']),
    ('jobs', lambda w: helpers.job_body(w['client'], session_tag=HUGE),
     ['session_tag']),
    ('jobs', lambda w: helpers.job_body(
        w['client'], job_schedule={'current_pid': HUGE}),
     ['job_schedule', 'current_pid']),
    ('jobs', lambda w: helpers.job_body(w['client'], actions=[
        {'freezer_action': {}, 'max_retries': HUGE}]),
     ['job_actions', 0, 'max_retries']),
    ('actions', lambda w: helpers.action_body(max_retries_interval=HUGE),
     ['max_retries_interval']),
    ('sessions', lambda w: helpers.session_body(hold_off=HUGE),
     ['hold_off']),
    ('sessions', lambda w: helpers.session_body(session_tag=HUGE),
     ['session_tag']),
])
def test_huge_integers_are_refused_or_kept_exactly(api, world, kind,
                                                   body_of, path):
    before = helpers.snapshot(api)
    resp = api.post(kind, json=body_of(world))
    if resp.status_code >= 400:
        assert_error(resp, 400)
        assert helpers.snapshot(api) == before
        return
    assert resp.status_code == 201, resp.text
    doc_id = resp.json[helpers.ID_FIELDS[kind]]
    doc = api.doc(kind, doc_id)
    value = doc
    for key in path:
        value = value[key]
    expected = body_of(world)
    for key in path:
        if key != 'backup_metadata':
            expected = expected[key]
    assert value == expected
    assert type(value) is int
    # the document is still listed and searchable
    assert doc_id in api.ids(kind)
    assert doc_id in api.ids(kind, {'match': [{'user_id': 'alice'}]})


def test_huge_integer_in_session_start(api, world):
    resp = _refused(api, world, ROUTES[14], json={
        'start': {'job_id': world['job'], 'current_tag': HUGE}})
    assert_error(resp, 400)


def test_session_with_huge_tag_can_start(api, world, clock):
    resp = api.patch('sessions', world['session'],
                     json={'session_tag': 2 ** 63 - 1})
    if resp.status_code == 400:
        assert_error(resp, 400)
        return
    assert resp.status_code == 200
    resp = api.post('sessions', world['session'], 'action', json={
        'start': {'job_id': world['job'], 'current_tag': 2 ** 63 - 1}})
    assert resp.status_code < 500, resp.text


@pytest.mark.parametrize('number', ['1e400', '-1e400', '1' * 5000])
def test_out_of_range_floats_and_long_numbers(api, number):
    body = json.dumps(helpers.backup_body(size='PLACEHOLDER'))
    body = body.replace('"PLACEHOLDER"', number)
    resp = api.post('backups', body=body)
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert_error(resp, 400)
        assert api.list('backups') == []
        return
    assert resp.status_code == 201
    text = api.get('backups', resp.json['backup_id']).text

    def refuse(name):
        raise ValueError(name)
    json.loads(text, parse_constant=refuse)  # valid JSON, no Infinity
    json.loads(api.get('backups').text, parse_constant=refuse)


# URLs -----------------------------------------------------------------------

@pytest.mark.parametrize('kind', helpers.KINDS)
@pytest.mark.parametrize('doc_id', ['été', '日本語', '😀', '%C3%A9t%C3%A9',
                                    'a%2Fb', 'a b', 'x' * 5000, '..',
                                    "'; DROP TABLE jobs; --", '%00', '*'])
def test_unknown_odd_ids_are_404(api, world, kind, doc_id):
    before = helpers.snapshot(api)
    resp = api.get(kind, doc_id)
    assert_client_error(resp)
    assert resp.status_code in (400, 404), resp.status
    resp = api.delete(kind, doc_id)
    assert_client_error(resp)
    assert resp.status_code in (400, 404), resp.status
    assert helpers.snapshot(api) == before


@pytest.mark.parametrize('kind,body_of', [
    ('jobs', lambda w: helpers.job_body(w['client'])),
    ('actions', lambda w: helpers.action_body()),
    ('sessions', lambda w: helpers.session_body()),
])
@pytest.mark.parametrize('doc_id', ['été', '日本語', '😀', 'a b', 'x' * 300,
                                    '%00', 'a.b'])
def test_replace_with_odd_id(api, world, kind, body_of, doc_id):
    """Either refused (4xx) or created and readable at the same URL."""
    before = helpers.snapshot(api)
    resp = api.post(kind, doc_id, json=body_of(world))
    if resp.status_code >= 400:
        assert_client_error(resp)
        assert helpers.snapshot(api) == before
        return
    assert resp.status_code == 201, resp.text
    stored_id = resp.json[helpers.ID_FIELDS[kind]]
    assert api.doc(kind, stored_id)[helpers.ID_FIELDS[kind]] == stored_id
    assert stored_id in api.ids(kind)


@pytest.mark.parametrize('client_id', ['été', '日本', 'a b', '😀'])
def test_odd_client_ids_are_400(api, client_id):
    assert_error(api.post('clients', json={'client_id': client_id}), 400)
    assert api.list('clients') == []


def test_session_job_routes_with_odd_ids(api, world):
    before = helpers.snapshot(api)
    for odd in ('été', '😀', 'x' * 5000):
        assert_client_error(api.put('sessions', world['session'], 'jobs',
                                    odd))
        assert_client_error(api.delete('sessions', world['session'], 'jobs',
                                       odd))
        assert_client_error(api.put('sessions', odd, 'jobs', world['job']))
        assert_client_error(api.post('jobs', odd, 'event',
                                     json={'start': None}))
    assert helpers.snapshot(api) == before


# Other owners' and deleted ids ----------------------------------------------

def test_deleted_ids_are_404_on_every_route(api, world):
    job_id, session_id = world['job'], world['session']
    assert api.delete('jobs', job_id).status_code == 204
    assert api.delete('sessions', session_id).status_code == 204
    assert api.delete('backups', world['backup']).status_code == 204
    assert api.delete('actions', world['action']).status_code == 204
    before = helpers.snapshot(api)
    assert_error(api.patch('jobs', job_id, json={'description': 'x'}), 404)
    assert_error(api.post('jobs', job_id, 'event', json={'start': None}),
                 404)
    assert_error(api.patch('sessions', session_id,
                           json={'description': 'x'}), 404)
    assert_error(api.post('sessions', session_id, 'action', json={
        'start': {'job_id': job_id, 'current_tag': 0}}), 404)
    assert_error(api.patch('backups', world['backup'],
                           json={'status': 'error'}), 404)
    assert_error(api.patch('actions', world['action'],
                           json={'max_retries': 1}), 404)
    new_session = helpers.make_session(api)
    assert_error(api.put('sessions', new_session, 'jobs', job_id), 404)
    after = helpers.snapshot(api)
    del after['sessions'][new_session]
    assert after == before


def test_unknown_job_in_session_action(api, world):
    resp = _refused(api, world, ROUTES[14], json={
        'start': {'job_id': 'f' * 32, 'current_tag': 0}})
    assert_error(resp, 400)
    resp = _refused(api, world, ROUTES[14], json={
        'end': {'job_id': 'f' * 32, 'current_tag': 0, 'result': 'fail'}})
    assert_error(resp, 400)


def test_job_of_other_session_in_session_action(api, world):
    other_job = helpers.make_job(api, world['client'])
    resp = _refused(api, world, ROUTES[14], json={
        'start': {'job_id': other_job, 'current_tag': 0}})
    assert_error(resp, 400)


def test_errors_never_leak_internals(api, world):
    """Spot check of error descriptions: no SQL, no tracebacks."""
    responses = [
        api.get('jobs', query='offset=99999999999999999999999'),
        api.post('jobs', world['job'], json={'job_actions': [1]}),
        api.patch('sessions', world['session'], json={'hold_off': 'x'}),
        api.get('jobs', json={'match': [{'a' * 300: 1}]}),
    ]
    for resp in responses:
        text = resp.text.lower()
        for marker in ('traceback', 'sqlalchemy', 'sqlite', 'select ',
                       'file "/', 'exception'):
            assert marker not in text, (resp.status, resp.text)


# D17: trailing slashes everywhere -------------------------------------------

def test_every_route_with_trailing_slash(api, world):
    for route in ROUTES:
        body = route[3](world)
        if route[0] == 'create-client':
            body['client_id'] = 'slash-node'
        path = route[2].format(**world)
        resp = api.call(route[1], *path.split('/'), json=body, slash=True)
        assert resp.status_code in (200, 201, 202), (route[0], resp.text)
    for kind, key in (('backups', 'backup'), ('clients', 'client'),
                      ('jobs', 'job'), ('actions', 'action'),
                      ('sessions', 'session')):
        resp = api.get(kind, world[key], slash=True)
        assert resp.status_code == 200, (kind, resp.text)
        assert api.get(kind, slash=True).status_code == 200
    resp = api.delete('sessions', world['session'], 'jobs', world['job'],
                      slash=True)
    assert resp.status_code == 204
    resp = api.put('sessions', world['session'], 'jobs', world['job'],
                   slash=True)
    assert resp.status_code == 204
    for kind, key in (('backups', 'backup'), ('clients', 'client'),
                      ('jobs', 'job'), ('actions', 'action'),
                      ('sessions', 'session')):
        resp = api.delete(kind, world[key], slash=True)
        assert resp.status_code == 204, (kind, resp.text)
        assert_error(api.get(kind, world[key], slash=True), 404)
