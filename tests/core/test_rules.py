"""Pure rules: merge, search parsing, job events, defaults, schemas."""

import copy

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from freezer_api.core import backups
from freezer_api.core import base
from freezer_api.core import clients
from freezer_api.core import jobs
from freezer_api.core import schemas
from freezer_api.core import search
from freezer_api.core.actions import ActionManager
from freezer_api.core.errors import Forbidden
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import Unprocessable
from freezer_api.core.merge import deep_merge
from freezer_api.core.merge import json_copy
from freezer_api.storage.base import Record
from freezer_api.storage.base import Scope
from freezer_api.storage.query import Range
from freezer_api.storage.query import Term


def test_deep_merge_merges_objects_and_replaces_arrays_and_scalars():
    base = {'a': {'x': 1, 'y': {'z': 2}}, 'l': [1, 2], 's': 'old'}
    patch = {'a': {'y': {'w': 3}}, 'l': [9], 's': 'new', 'n': None}
    merged = deep_merge(base, patch)
    assert merged == {'a': {'x': 1, 'y': {'z': 2, 'w': 3}}, 'l': [9],
                      's': 'new', 'n': None}
    assert base == {'a': {'x': 1, 'y': {'z': 2}}, 'l': [1, 2], 's': 'old'}


def test_deep_merge_keeps_the_key_order_of_the_base_then_the_patch():
    merged = deep_merge({'b': 1, 'a': {'d': 1, 'c': 2}, 'z': 0},
                        {'y': 1, 'a': {'e': 3, 'c': 9}, 'b': 2})
    assert list(merged) == ['b', 'a', 'z', 'y']
    assert list(merged['a']) == ['d', 'c', 'e']


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
              st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=2), inner,
                                            max_size=3)),
    max_leaves=12)
json_objects = st.dictionaries(st.text(max_size=2), json_values, max_size=4)


def _containers(value):
    """Every dict and list inside ``value``, itself included."""
    found = []
    if isinstance(value, (dict, list)):
        found.append(value)
        for item in (value.values() if isinstance(value, dict) else value):
            found += _containers(item)
    return found


@settings(max_examples=300, deadline=None)
@given(json_objects, json_objects)
def test_deep_merge_shares_nothing_mutable_with_its_inputs(base, patch):
    """The merged document is changed in place afterwards (by the
    managers) while the old one is still compared with it (no-op
    PATCH, audit fields): no container may be shared."""
    before_base, before_patch = copy.deepcopy(base), copy.deepcopy(patch)
    merged = deep_merge(base, patch)
    inputs = {id(c) for c in _containers(base) + _containers(patch)}
    assert not inputs & {id(c) for c in _containers(merged)}
    for container in _containers(merged):
        if isinstance(container, dict):
            container['mutated'] = True
        else:
            container.append('mutated')
    # by repr: a NaN is not equal to itself
    assert repr(base) == repr(before_base)
    assert repr(patch) == repr(before_patch)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_copy_is_a_deep_copy(value):
    copied = json_copy(value)
    assert repr(copied) == repr(value)
    assert not ({id(c) for c in _containers(value)}
                & {id(c) for c in _containers(copied)})


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


def test_capabilities_are_checked_against_the_lists_or_the_defaults():
    actions = [{'freezer_action': {'action': 'backup', 'mode': 'mysql'}}]
    jobs.check_capabilities({'client': {}}, 'c', actions)
    # a client stored without lists has the full ones, no more
    with pytest.raises(Unprocessable, match='mode: tape'):
        jobs.check_capabilities({'client': {}}, 'c', [
            {'freezer_action': {'action': 'backup', 'mode': 'tape'}}])
    # a central client stored without lists does not run exec
    exec_action = [{'freezer_action': {'action': 'exec'}}]
    jobs.check_capabilities({'client': {}}, 'c', exec_action)
    with pytest.raises(Unprocessable, match='action: exec'):
        jobs.check_capabilities({'client': {'is_central': True}}, 'c',
                                exec_action)
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
        schemas.validate(getattr(schemas, schema), doc)


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
    schemas.validate(getattr(schemas, schema), doc)


# backups: numbers as agents send them (D13) ---------------------------------

@pytest.mark.parametrize('value, number', [
    (7, 7), (7.0, 7), (7.5, 7.5), ('7', 7), (' 7\n', 7), ('-7', -7),
    ('+7', 7), ('7.', 7), ('.5', 0.5), ('7.25', 7.25), ('1e3', 1000),
    ('1E-1', 0.1), ('', None), (None, None), (2 ** 63 - 1, 2 ** 63 - 1),
    (-(2 ** 63 - 1), -(2 ** 63 - 1)),
])
def test_backup_numbers_mean_what_they_say(value, number):
    metadata = backups.normalize({'level': value, 'note': '7'})
    assert metadata == {'level': number, 'note': '7'}
    assert type(metadata['level']) is type(number)


@pytest.mark.parametrize('value', [
    'seven', 'nan', 'NaN', 'inf', '-inf', 'Infinity', '1e400', '1e99999',
    '0x1f', '1_000', '١٢', '7 7', '--7', '.', 'e5', ' ', True, False,
    [7], {'n': 7}, 2 ** 63, -(2 ** 63) - 1, 1e19, float('nan'),
    float('inf'), '9' * 41, '9' * 5000,
])
def test_backup_numbers_refused_only_when_meaningless(value):
    with pytest.raises(InvalidInput) as refused:
        backups.normalize({'time_stamp': value})
    message = refused.value.message
    assert message.startswith('time_stamp: ')
    assert len(message) < 120
    assert 'int_max_str_digits' not in message


def test_backup_empty_strings_are_null_in_typed_fields_only():
    assert backups.normalize({'encrypted': '', 'mode': '',
                              'broken_links': ''}) == {
        'encrypted': None, 'mode': '', 'broken_links': None}


def test_backup_v2_view_has_status_and_no_user_name():
    stored = {'backup_id': 'b', 'user_id': 'u', 'user_name': 'n',
              'project_id': 'p', 'backup_metadata': {}}
    assert backups.project_view(stored) == {
        'backup_id': 'b', 'user_id': 'u', 'project_id': 'p',
        'backup_metadata': {}, 'status': 'available'}
    assert backups.project_view({**stored, 'status': 'error'})[
        'status'] == 'error'
    assert stored['user_name'] == 'n'


# clients: the supported_* lists every document shows -----------------------

def test_client_documents_show_the_four_lists():
    full = {name: list(values) for name, values in schemas.SUPPORTED.items()}
    shown = clients.with_capabilities({'client': {'client_id': 'c',
                                                  'supported_modes': ['fs']},
                                       'user_id': 'u'})
    assert shown['client'] == {**full, 'client_id': 'c',
                               'supported_modes': ['fs']}
    central = clients.with_capabilities({'client': {'is_central': True}})
    assert central['client']['supported_actions'] == [
        'backup', 'restore', 'info', 'admin']
    complete = {'client': full}
    assert clients.with_capabilities(complete) is complete


def test_exec_for_a_central_client_needs_the_rule():
    owner = base.Owner('p', 'u')
    asked = []

    def allows(rule):
        asked.append(rule)
        return rule == 'jobs:create_central_exec'

    exec_actions = [{'freezer_action': {'action': 'backup'}},
                    {'freezer_action': {'action': 'exec'}}]
    jobs.check_central_exec(base.Caller(Scope('p'), owner, allows=allows),
                            exec_actions)
    assert asked == ['jobs:create_central_exec']
    # the default caller is allowed nothing extra
    with pytest.raises(Forbidden, match='jobs:create_central_exec'):
        jobs.check_central_exec(base.Caller(Scope('p'), owner), exec_actions)
    jobs.check_central_exec(base.Caller(Scope('p'), owner),
                            exec_actions[:1])


# jobs: actions given by action_id alone (D11) -------------------------------

class _Actions:
    """A transaction's reads of stored actions (all that is needed)."""

    def __init__(self, *docs):
        self.docs = {doc['action_id']: doc for doc in docs}
        self.asked = []

    def get(self, kind, doc_id, scope):
        self.asked.append((kind, doc_id, scope))
        doc = self.docs.get(doc_id)
        if doc is None or not scope.contains(doc['project_id'],
                                             doc['user_id']):
            return None
        return Record(kind, doc_id, doc['project_id'], doc['user_id'], 1,
                      0, doc)


def test_job_actions_by_reference_are_filled_in():
    stored = {'action_id': 'a1', 'user_id': 'u', 'project_id': 'p',
              'freezer_action': {'action': 'backup', 'mode': 'fs'},
              'max_retries': 5, 'max_retries_interval': 6,
              'mandatory': True, 'extra': 'not copied'}
    txn = _Actions(stored)
    caller = base.Caller(Scope('p'), base.Owner('p', 'u2'))
    job_actions = [{'freezer_action': {'action': 'restore'}},
                   {'action_id': 'a1'},
                   {'action_id': 'a1', 'max_retries': 0, 'mandatory': False}]
    referenced = ActionManager(None).resolve_references(txn, caller,
                                                        job_actions)
    assert referenced == {1, 2}
    assert job_actions[1] == {'action_id': 'a1', 'freezer_action': {
        'action': 'backup', 'mode': 'fs'}, 'max_retries': 5,
        'max_retries_interval': 6, 'mandatory': True}
    assert job_actions[2]['max_retries'] == 0
    assert job_actions[2]['mandatory'] is False
    assert job_actions[2]['max_retries_interval'] == 6
    # a copy: the job never shares the action's objects
    job_actions[1]['freezer_action']['mode'] = 'changed'
    assert stored['freezer_action']['mode'] == 'fs'
    assert [scope for _, _, scope in txn.asked] == [Scope('p')] * 2


@pytest.mark.parametrize('scope', [Scope('other'), Scope('p', 'someone')])
def test_job_action_by_reference_out_of_scope_is_as_unknown(scope):
    txn = _Actions({'action_id': 'a1', 'user_id': 'u', 'project_id': 'p',
                    'freezer_action': {'action': 'backup'}})
    caller = base.Caller(scope, base.Owner(scope.project_id, 'x'))
    messages = []
    for action_id in ('a1', 'nowhere'):
        with pytest.raises(Unprocessable) as refused:
            ActionManager(None).resolve_references(
                txn, caller, [{'action_id': action_id}])
        messages.append(refused.value.message.replace(action_id, 'ID'))
    assert messages[0] == messages[1] == (
        'job_actions/0: no action found with ID ID')


def test_job_action_schema_takes_an_action_or_an_id():
    job = {'client_id': 'h', 'job_schedule': {}}
    schemas.validate(schemas.JOB,
                     {**job, 'job_actions': [{'action_id': 'a1'}]})
    with pytest.raises(InvalidInput, match="give a 'freezer_action'"):
        schemas.validate(schemas.JOB, {**job, 'job_actions': [
            {'max_retries': 1}]})


def test_schemas_are_passed_as_objects_not_names():
    with pytest.raises(TypeError):
        schemas.validate('JOB', {})
    with pytest.raises(InvalidInput):
        schemas.validate(schemas.JOB, {})
