"""Listing: paging (D4) and the search document in the GET body (D5)."""

import json

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error


# paging (D4) ----------------------------------------------------------------

def test_default_limit_is_10(api):
    ids = [helpers.make_backup(api) for _ in range(12)]
    resp = api.get('backups')
    assert resp.status_code == 200
    assert len(resp.json['backups']) == 10
    assert len(ids) == 12


def test_order_is_creation_time_then_id(api, clock):
    created = []
    for i in range(6):
        created.append(helpers.make_backup(api))
        clock.advance(1)
    assert api.ids('backups') == created
    # documents created within the same instant are ordered by id
    same = [helpers.make_backup(api) for _ in range(6)]
    assert api.ids('backups') == created + sorted(same)


def test_scheduler_paging(api, clock):
    """Pages of 10 until a short page: every job once, in order."""
    client_id = helpers.register_client(api, 'node1')
    created = []
    for i in range(25):
        created.append(helpers.make_job(api, client_id,
                                        description=f'job {i}'))
        if i % 3 == 0:
            clock.advance(1)
    search = {'match': [{'client_id': client_id}],
              'match_not': [{'status': 'completed'}]}
    seen, offset, pages = [], 0, 0
    while True:
        resp = api.get('jobs', slash=True, json=search,
                       query=f'limit=10&offset={offset}')
        assert resp.status_code == 200
        page = resp.json['jobs']
        pages += 1
        seen.extend(job['job_id'] for job in page)
        if len(page) < 10:
            break
        offset += 10
    assert pages == 3
    expected = sorted(created, key=lambda j: (
        api.doc('jobs', j)['job_schedule']['time_created'], j))
    assert seen == expected


@pytest.mark.parametrize('query,count', [
    ('limit=1', 1), ('limit=3&offset=2', 3), ('limit=1000', 12),
    ('offset=11', 1), ('offset=12', 0), ('offset=500', 0),
    ('limit=5&offset=10', 2),
])
def test_limit_offset(api, clock, query, count):
    created = []
    for _ in range(12):
        created.append(helpers.make_backup(api))
        clock.advance(1)
    resp = api.get('backups', query=query)
    assert resp.status_code == 200
    params = dict(p.split('=') for p in query.split('&'))
    offset = int(params.get('offset', 0))
    limit = int(params.get('limit', 10))
    assert [b['backup_id'] for b in resp.json['backups']] == \
        created[offset:offset + limit]
    assert len(resp.json['backups']) == count


@pytest.mark.parametrize('kind', helpers.KINDS)
@pytest.mark.parametrize('query', [
    'limit=0', 'limit=-1', 'limit=1001', 'limit=abc', 'limit=1.5',
    'limit=', 'offset=-1', 'offset=x', 'offset=2.0', 'limit=1&limit=2',
    'offset=0&offset=1', 'limit=99999999999999999999999',
])
def test_invalid_paging(api, kind, query):
    helpers.make_backup(api)
    assert_error(api.get(kind, query=query), 400)


def test_huge_offset(api):
    helpers.make_backup(api)
    resp = api.get('backups', query='offset=99999999999999999999999')
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        assert resp.json == {'backups': []}
    else:
        assert_error(resp, 400)


# search (D5) ----------------------------------------------------------------

@pytest.fixture
def jobs(api):
    """Three jobs on two clients with various states."""
    c1 = helpers.register_client(api, 'node1')
    c2 = helpers.register_client(api, 'node2')
    made = {
        'a': helpers.make_job(api, c1, description='Nightly DB Backup',
                              job_schedule={'status': 'scheduled'}),
        'b': helpers.make_job(api, c1, description='weekly files',
                              job_schedule={'status': 'completed',
                                            'result': 'success'}),
        'c': helpers.make_job(api, c2, description='Restore test',
                              job_schedule={'status': 'running'},
                              actions=[{'freezer_action':
                                        helpers.freezer_action(
                                            action='restore',
                                            mode='mysql')}]),
    }
    return {'c1': c1, 'c2': c2, **made}


def _names(api, jobs, search):
    found = set(api.ids('jobs', search))
    return sorted(name for name in ('a', 'b', 'c') if jobs[name] in found)


def test_scheduler_poll_body(api, jobs):
    search = {'match': [{'client_id': jobs['c1']}],
              'match_not': [{'status': 'completed'}]}
    assert _names(api, jobs, search) == ['a']
    resp = api.get('jobs', slash=True, query='limit=10&offset=0',
                   json=search)
    assert resp.status_code == 200
    assert [j['job_id'] for j in resp.json['jobs']] == [jobs['a']]


@pytest.mark.parametrize('search,expected', [
    ({'match': [{'client_id': 'proj-a_node1'}]}, ['a', 'b']),
    ({'match': [{'client_id': 'proj-a_node2'}]}, ['c']),
    ({'match': [{'client_id': 'proj-a_node'}]}, []),
    ({'match': [{'client_id': 'PROJ-A_NODE1'}]}, []),
    ({'match_not': [{'client_id': 'proj-a_node1'}]}, ['c']),
    ({'match': [{'status': 'running'}]}, ['c']),
    ({'match': [{'status': 'completed'}]}, ['b']),
    ({'match_not': [{'status': 'completed'}]}, ['a', 'c']),
    ({'match': [{'job_schedule.status': 'scheduled'}]}, ['a']),
    ({'match': [{'job_schedule.result': 'success'}]}, ['b']),
    ({'match': [{'status.job_schedule': 'scheduled'}]}, []),
    ({'match': [{'schedule.status': 'scheduled'}]}, []),
    ({'match': [{'mode': 'mysql'}]}, ['c']),
    ({'match': [{'job_actions.freezer_action.action': 'restore'}]}, ['c']),
    ({'match': [{'action': 'backup'}]}, ['a', 'b']),
    ({'match': [{'client_id': 'proj-a_node1'}, {'status': 'scheduled'}]},
     ['a']),
    ({'match': [{'client_id': 'proj-a_node1'}],
      'match_not': [{'status': 'completed'}, {'status': 'running'}]},
     ['a']),
    ({'match': [{'_all': 'db back'}]}, ['a']),
    ({'match': [{'_all': 'NIGHTLY DB'}]}, ['a']),
    ({'match': [{'_all': 'NIGHTLY'}]}, ['a', 'b', 'c']),
    ({'match': [{'_all': 'node2'}]}, ['c']),
    ({'match': [{'_all': 'mysql'}]}, ['c']),
    ({'match': [{'_all': 'nothing like this'}]}, []),
    ({'match': [{'_all': json.dumps([{'client_id': 'proj-a_node2'}])}]},
     ['c']),
    ({'match': [{'_all': json.dumps([{'client_id': 'proj-a_node1'},
                                     {'status': 'completed'}])}]}, ['b']),
    ({'match': [{'description': 'Restore test'}]}, ['c']),
    ({'match': [{'description': 'restore test'}]}, []),
    ({'match': [{'nonexistent_field': 'x'}]}, []),
    ({'match_not': [{'nonexistent_field': 'x'}]}, ['a', 'b', 'c']),
    ({'match': []}, ['a', 'b', 'c']),
    ({}, ['a', 'b', 'c']),
    ({'match': [{'session_tag': 0}]}, ['a', 'b', 'c']),
    ({'match': [{'session_tag': '0'}]}, []),
    ({'match': [{'mandatory': True}]}, ['a', 'b']),
    ({'match': [{'session_id': ''}]}, ['a', 'b', 'c']),
])
def test_job_search(api, jobs, search, expected):
    assert _names(api, jobs, search) == expected


def test_match_on_ids(api, jobs):
    assert _names(api, jobs, {'match': [{'job_id': jobs['b']}]}) == ['b']
    assert api.ids('jobs', {'match': [{'user_id': 'alice'}]}) != []
    assert api.ids('jobs', {'match': [{'user_id': 'bob'}]}) == []


def test_search_with_paging(api, jobs):
    search = {'match': [{'client_id': jobs['c1']}]}
    first = api.list('jobs', search, query='limit=1&offset=0')
    second = api.list('jobs', search, query='limit=1&offset=1')
    third = api.list('jobs', search, query='limit=1&offset=2')
    assert [first[0]['job_id'], second[0]['job_id']] == sorted(
        [jobs['a'], jobs['b']], key=lambda j: (0, j))
    assert third == []


@pytest.mark.parametrize('kind', helpers.KINDS)
def test_search_works_on_every_kind(api, kind):
    helpers.make_backup(api)
    client_id = helpers.register_client(api, 'node1')
    helpers.make_job(api, client_id)
    helpers.make_session(api)
    assert api.list(kind, {'match': [{'_all': 'zzz-not-there'}]}) == []
    assert len(api.list(kind, {'match_not': [{'x-none': 1}]})) >= 1


def test_client_search(api):
    helpers.register_client(api, 'node1', description='Database host')
    helpers.register_client(api, 'node2')
    assert [c['client']['client_id'] for c in api.list(
        'clients', {'match': [{'client_id': 'proj-a_node2'}]})] == [
        'proj-a_node2']
    assert [c['client']['client_id'] for c in api.list(
        'clients', {'match': [{'_all': 'database'}]})] == ['proj-a_node1']
    assert [c['client']['client_id'] for c in api.list(
        'clients', {'match': [{'client.hostname': 'node2.example.org'}]})
    ] == ['proj-a_node2']


def test_session_and_action_search(api):
    s1 = helpers.make_session(api, description='alpha')
    helpers.make_session(api, description='beta')
    assert api.ids('sessions', {'match': [{'description': 'alpha'}]}) == [s1]
    assert api.ids('sessions', {'match': [{'status': 'active'}]}) != []
    a1 = helpers.make_action(api, freezer_action=helpers.freezer_action(
        mode='mongo'))
    helpers.make_action(api)
    assert api.ids('actions', {'match': [{'mode': 'mongo'}]}) == [a1]
    assert api.ids('actions', {
        'match': [{'freezer_action.mode': 'mongo'}]}) == [a1]


# backups time range ----------------------------------------------------------

@pytest.fixture
def stamped(api):
    return {ts: helpers.make_backup(api, time_stamp=ts)
            for ts in (1000, 2000, 3000)}


@pytest.mark.parametrize('search,expected', [
    ({'time_after': 2000}, [2000, 3000]),
    ({'time_after': 2001}, [3000]),
    ({'time_before': 2000}, [1000, 2000]),
    ({'time_before': 1999}, [1000]),
    ({'time_after': 1000, 'time_before': 3000}, [1000, 2000, 3000]),
    ({'time_after': 1500, 'time_before': 2500}, [2000]),
    ({'time_after': 3001}, []),
    ({'time_after': 2500, 'time_before': 1500}, []),
    ({'time_after': 0}, [1000, 2000, 3000]),
    ({'time_after': 2000, 'match': [{'container': 'freezer_container'}]},
     [2000, 3000]),
    ({'time_after': 2000, 'match': [{'container': 'other'}]}, []),
])
def test_backup_time_range(api, stamped, search, expected):
    found = set(api.ids('backups', search))
    assert sorted(ts for ts, bid in stamped.items() if bid in found) == \
        expected


def test_backup_time_range_ignores_backups_without_stamp(api, stamped):
    body = helpers.backup_body()
    del body['time_stamp']
    no_stamp = helpers.create(api, 'backups', body)
    assert no_stamp not in api.ids('backups', {'time_after': 0})
    assert no_stamp in api.ids('backups')


def test_backup_search_by_metadata(api, stamped):
    assert api.ids('backups', {'match': [{'backup_name': 'nightly'}]}) != []
    assert api.ids('backups', {'match': [
        {'backup_metadata.time_stamp': 2000}]}) == [stamped[2000]]
    assert api.ids('backups', {'match': [{'time_stamp': 3000}]}) == [
        stamped[3000]]


# invalid search documents ---------------------------------------------------

@pytest.mark.parametrize('kind', helpers.KINDS)
@pytest.mark.parametrize('search', [
    [], [{'match': []}], 'client_id', 5, True,
    {'unknown': []},
    {'match': [], 'sort': 'asc'},
    {'match': 'x'},
    {'match': 5},
    {'match': [1]},
    {'match': ['client_id']},
    {'match': [None]},
    {'match': [{}]},
    {'match': [[{'a': 1}]]},
    {'match_not': 'x'},
    {'match_not': [{}]},
    {'match': [{'client_id': {'nested': 1}}]},
    {'match': [{'client_id': ['a', 'b']}]},
    {'match': [{'': 'x'}]},
    {'match': [{'_all': 5}]},
])
def test_invalid_search_is_400(api, kind, search):
    helpers.make_backup(api)
    assert_error(api.get(kind, json=search), 400)


@pytest.mark.parametrize('kind', ['jobs', 'clients', 'actions', 'sessions'])
def test_time_range_is_for_backups_or_rejected(api, kind):
    resp = api.get(kind, json={'time_after': 1})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert_error(resp, 400)


@pytest.mark.parametrize('search', [
    {'time_after': 'yesterday'}, {'time_before': [1]},
    {'time_after': {'t': 1}}, {'time_before': True},
])
def test_invalid_time_range(api, search):
    assert_error(api.get('backups', json=search), 400)


def test_malformed_search_json(api):
    assert_error(api.get('jobs', body='{"match": [}'), 400)
    assert_error(api.get('jobs', body='{"match": [{"a": 1}]'), 400)


def test_null_or_empty_search_body_lists_all(api):
    helpers.make_backup(api)
    assert len(api.list('backups', search=None)) == 1
    resp = api.get('backups', body='null')
    assert resp.status_code == 200
    assert len(resp.json['backups']) == 1
    resp = api.get('backups', body='')
    assert resp.status_code == 200
    resp = api.get('backups', body='{}')
    assert resp.status_code == 200
    assert len(resp.json['backups']) == 1
