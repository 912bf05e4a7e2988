"""Pure rules: merge, search parsing, job events, defaults, schemas."""

import pytest

from freezer_api.core import jobs
from freezer_api.core import schemas
from freezer_api.core import search
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import Unprocessable
from freezer_api.core.merge import deep_merge
from freezer_api.storage.query import Range
from freezer_api.storage.query import Term


def test_deep_merge_merges_objects_and_replaces_arrays_and_scalars():
    base = {'a': {'x': 1, 'y': {'z': 2}}, 'l': [1, 2], 's': 'old'}
    patch = {'a': {'y': {'w': 3}}, 'l': [9], 's': 'new', 'n': None}
    merged = deep_merge(base, patch)
    assert merged == {'a': {'x': 1, 'y': {'z': 2, 'w': 3}}, 'l': [9],
                      's': 'new', 'n': None}
    assert base == {'a': {'x': 1, 'y': {'z': 2}}, 'l': [1, 2], 's': 'old'}


def test_search_parses_match_match_not_all_and_time_range():
    query = search.parse({
        'match': [{'client_id': 'c1'}, {'_all': 'Text'}],
        'match_not': [{'status': 'completed'}],
        'time_after': 10, 'time_before': '20'}, 'backups')
    assert query.match == (Term('client_id', 'c1'),)
    assert query.match_not == (Term('status', 'completed'),)
    assert query.text == ('Text',)
    assert query.ranges == (Range('backup_metadata.time_stamp', 10, 20),)


def test_search_reads_the_legacy_all_list_form():
    query = search.parse({'match': [{'_all': '[{"a": 1}, {"b.c": "x"}]'}]},
                         'jobs')
    assert query.match == (Term('a', 1), Term('b.c', 'x'))
    assert query.text == ()


@pytest.mark.parametrize('doc', [
    [], 'x', 3, {'bogus': 1}, {'match': 'x'}, {'match': [1]},
    {'match': [{}]}, {'match': [{'a': {'nested': 1}}]},
    {'match': [{'a': [1]}]}, {'match_not': [{'_all': 'x'}]},
    {'match': [{'_all': 3}]}, {'match': [{'': 1}]},
    {'match': [{'a..b': 1}]}, {'time_after': 1},
    {'match': [{'f': 1}] * 51},
])
def test_search_rejects_malformed_documents(doc):
    with pytest.raises(InvalidInput):
        search.parse(doc, 'jobs')


@pytest.mark.parametrize('value', ['x', [], {}, True])
def test_search_time_bounds_must_be_numbers(value):
    with pytest.raises(InvalidInput):
        search.parse({'time_after': value}, 'backups')


def test_events_set_event_and_report_repeats():
    doc = {'job_schedule': {'status': 'completed', 'result': 'fail',
                            'event': ''}}
    new, result = jobs.apply_event(doc, 'start')
    assert result == 'success'
    assert new['job_schedule'] == {'status': '', 'result': '',
                                   'event': 'start'}
    assert jobs.apply_event(new, 'start') == (None, 'start already requested')
    new, _ = jobs.apply_event(new, 'abort')
    assert new['job_schedule']['event'] == 'abort'
    with pytest.raises(InvalidInput):
        jobs.apply_event(new, 'remove')


def test_action_defaults_fill_missing_and_null_keys_only():
    body = {'action_defaults': {'log_file': '/tmp/l', 'container': 'c'},
            'job_actions': [
                {'freezer_action': {'action': 'backup'}},
                {'freezer_action': {'log_file': '/own', 'container': None}}]}
    jobs.expand_action_defaults(body)
    assert 'action_defaults' not in body
    assert body['job_actions'][0]['freezer_action'] == {
        'action': 'backup', 'log_file': '/tmp/l', 'container': 'c'}
    assert body['job_actions'][1]['freezer_action'] == {
        'log_file': '/own', 'container': 'c'}


def test_action_defaults_must_be_an_object_and_tolerate_no_actions():
    with pytest.raises(InvalidInput):
        jobs.expand_action_defaults({'action_defaults': [1]})
    assert jobs.expand_action_defaults({'action_defaults': {'a': 1}}) == {}


def test_capabilities_are_checked_only_where_the_client_lists_them():
    actions = [{'freezer_action': {'action': 'backup', 'mode': 'mysql'}}]
    jobs.check_capabilities({'client': {}}, 'c', actions)
    with pytest.raises(Unprocessable, match='mode: mysql'):
        jobs.check_capabilities(
            {'client': {'supported_modes': ['fs']}}, 'c', actions)
    with pytest.raises(Unprocessable, match='not registered'):
        jobs.check_capabilities(None, 'c', actions)


def test_detaching_a_job_keeps_other_schedule_keys():
    doc = {'session_id': 's', 'session_tag': 4,
           'job_schedule': {'status': 'scheduled', 'schedule_interval':
                            '1 days'}}
    assert jobs.detach_from_session(doc) == {
        'session_id': '', 'session_tag': 0,
        'job_schedule': {'status': 'scheduled', 'event': 'stop',
                         'schedule_interval': '1 days'}}


@pytest.mark.parametrize('schema, doc', [
    ('JOB', {'client_id': 'p_host', 'job_actions': 'x',
             'job_schedule': {}}),
    ('JOB', {'client_id': 'p_host', 'job_actions': [{}],
             'job_schedule': {}}),
    ('JOB', {'client_id': 'p_host', 'job_actions': [],
             'job_schedule': {'schedule_time': 'x'}}),
    ('JOB', {'client_id': 'bad host', 'job_actions': [],
             'job_schedule': {}}),
    ('JOB', {'client_id': 'h', 'job_actions': [], 'job_schedule': {},
             'unknown': 1}),
    ('JOB', {'client_id': 'h', 'job_actions': [], 'job_schedule': {
        'schedule_interval': 'sometimes'}}),
    ('SESSION', {'schedule': {}, 'hold_off': '30'}),
    ('SESSION', {'schedule': {}, 'status': 'weird'}),
    ('ACTION', {'freezer_action': 'backup'}),
    ('CLIENT', {'client_id': 'p_host', 'supported_modes': ['teleport']}),
    ('BACKUP_METADATA', {'container': 'c', 'backup_name': 'b'}),
    ('BACKUP_METADATA', {'container': 'c', 'backup_name': 'b',
                         'hostname': ''}),
    ('BACKUP_METADATA', {'container': 'c', 'backup_name': 'b',
                         'hostname': 'h', 'time_stamp': 'yesterday'}),
])
def test_schemas_close_upstream_holes(schema, doc):
    with pytest.raises(InvalidInput):
        schemas.validate(schema, doc)


@pytest.mark.parametrize('schema, doc', [
    ('JOB', {'client_id': 'proj_host.example.com', 'job_actions': [
        {'freezer_action': {'action': 'backup', 'extra': 1},
         'max_retries': 3}], 'job_schedule': {
        'schedule_interval': '2 days', 'schedule_start_date':
            '2015-06-02T16:20:00Z', 'status': 'scheduled'}}),
    ('BACKUP_METADATA', {'container': 'c', 'backup_name': 'b',
                         'host_name': 'h', 'anything': [1]}),
    ('SESSION', {'schedule': {'schedule_date': '2015-06-02T16:20:00'},
                 'extra': True}),
])
def test_schemas_accept_real_documents(schema, doc):
    schemas.validate(schema, doc)
