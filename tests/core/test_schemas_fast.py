"""The compiled schema check never lets through what jsonschema refuses.

``schemas.validate`` accepts a document early when the compiled check
(fastjsonschema) passes it; jsonschema decides everything else. So the
compiled check must never pass a document jsonschema refuses. This
mutates valid documents of every schema (values of other types, edge
numbers and strings, removed and added keys) and checks that rule.
"""

import copy

import jsonschema
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from freezer_api.core import errors
from freezer_api.core import schemas

_schedule = {'schedule_interval': '1 days', 'status': 'scheduled',
             'event': '', 'result': '', 'current_pid': 12,
             'schedule_start_date': '2026-01-01T01:00:00',
             'schedule_year': '2026', 'time_created': 5}
_action = {'freezer_action': {'action': 'backup', 'mode': 'fs',
                              'path_to_backup': '/x', 'backup_name': 'b'},
           'max_retries': 3, 'max_retries_interval': 0, 'mandatory': True,
           'action_id': 'a1'}
SEEDS = {
    'JOB': {'client_id': 'p_node1.example', 'job_id': 'j1',
            'description': 'd', 'session_id': '', 'session_tag': 0,
            'job_schedule': _schedule, 'job_actions': [_action],
            'user_id': 'u', 'project_id': 'p',
            'user_credentials': {'trust_id': 't'}},
    'JOB_PATCH': {'job_schedule': {'status': 'running', 'current_pid': 1},
                  'description': 'x'},
    'ACTION': _action,
    'ACTION_PATCH': {'max_retries': 1, 'mandatory': False},
    'SESSION': {'schedule': _schedule, 'session_tag': 2, 'hold_off': 30,
                'status': 'active', 'result': '', 'time_start': -1,
                'jobs': {'j1': {'client_id': 'c', 'status': 'running',
                                'result': ''}}},
    'SESSION_PATCH': {'description': 'x', 'hold_off': 0},
    'CLIENT': {'client_id': 'p_node1', 'hostname': 'node1', 'uuid': 'u1',
               'is_central': False, 'supported_modes': ['fs', 'mysql'],
               'description': 'd'},
    'CLIENT_PATCH': {'hostname': 'n_2', 'supported_storages': ['swift']},
    'BACKUP_METADATA': {'container': 'c', 'backup_name': 'b',
                        'hostname': 'h', 'level': 0, 'max_level': None,
                        'encrypted': False, 'broken_links': ['a'],
                        'time_stamp': 1700000000, 'version': '1'},
    'BACKUP_PATCH': {'status': 'available'},
}

ODD_VALUES = [None, True, False, 0, 1, -1, 1.0, 1.5, 2 ** 70, -0.0, '',
              'x', '1', 'true', 'a b', '\x00', 'é' * 300, [], ['x'], [1],
              ['fs', 'fs'], [True, 1], {}, {'a': 1}, {'freezer_action': {}}]


def _jsonschema_accepts(schema_id, doc):
    validator = jsonschema.Draft7Validator(getattr(schemas, schema_id))
    return validator.is_valid(doc)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _mutate(doc, path, action, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value if action == 'set' else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == 'set':
        parent[last] = value
    elif action == 'delete':
        del parent[last]
    elif isinstance(parent, dict):
        parent[f'extra_{last}'] = value
    else:
        parent.append(value)
    return doc


@pytest.mark.parametrize('schema_id', sorted(SEEDS))
def test_the_seeds_are_valid(schema_id):
    assert _jsonschema_accepts(schema_id, SEEDS[schema_id])
    schemas.validate(getattr(schemas, schema_id), SEEDS[schema_id])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_the_compiled_check_passes_nothing_jsonschema_refuses(schema_id,
                                                              data):
    doc = SEEDS[schema_id]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(doc))))
        action = data.draw(st.sampled_from(['set', 'delete', 'add']))
        if action == 'delete' and not path:
            continue
        doc = _mutate(doc, path, action,
                      data.draw(st.sampled_from(ODD_VALUES)))
    accepted = _jsonschema_accepts(schema_id, doc)
    try:
        schemas.validate(getattr(schemas, schema_id), doc)
        validated = True
    except errors.InvalidInput:
        validated = False
    assert validated == accepted, (schema_id, doc)


@pytest.mark.parametrize('schema, document', [
    (schemas.CLIENT, {'client_id': 'p_node1.example', 'uuid': '\u00eb'}),
    (schemas.CLIENT, {'client_id': 'p\u00e9_node1.example'}),
    (schemas.JOB, dict(SEEDS['JOB'], job_id='j\u00f6b')),
    (schemas.JOB, dict(SEEDS['JOB'], session_id='\u0663')),
    (schemas.JOB, dict(SEEDS['JOB'], job_schedule=dict(
        _schedule, schedule_year='\u0662\u0660\u0662\u0666'))),
])
def test_non_ascii_letters_and_digits_are_refused(schema, document):
    """Patterns mean what JSON Schema (ECMA 262) says, where \\w and \\d are
    ASCII: the service refuses what its OpenAPI document refuses (it took
    a client uuid "\u00eb" that schemathesis knew to be invalid)."""
    with pytest.raises(errors.InvalidInput):
        schemas.validate(schema, document)
