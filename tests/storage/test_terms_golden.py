"""The stored index forms, frozen.

SQL term rows and Elasticsearch search fields already stored must keep
matching new queries: there is no migration for a change of their forms.
``golden_terms.json`` holds, for tricky documents and query terms, the exact
forms the code produced when the file was made; any difference fails here.

Regenerate (``python -m tests.storage.test_terms_golden``) only for an
intended change of stored forms, which then needs a migration of the SQL
term rows and a reindex of Elasticsearch.
"""

import json
import math
import pathlib

import pytest

from freezer_api.storage.elasticsearch import mappings
from freezer_api.storage.sqlalchemy import models

GOLDEN = pathlib.Path(__file__).with_name('golden_terms.json')

_LONG = 'v' * 600

DOCUMENTS = [
    {'backup_name': 'mysql', 'hostname': 'node1', 'level': 0,
     'max_level': None, 'time_stamp': 1700000000, 'size': 1.5e9,
     'storages': [{'type': 'swift'}, {'type': 'local'}],
     'dry_run': False, 'tags': ['a', 'a', 'b'], 'nested': {'level': 0}},
    # numbers: the exact-int limit, floats that are ints, overflow, specials
    {'i': [0, -1, 1, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 1, -(2 ** 53) + 1,
           -(2 ** 53), -(2 ** 53) - 1, 2 ** 63, -(2 ** 63) - 1, 10 ** 20,
           10 ** 400, -(10 ** 400)],
     'f': [0.0, -0.0, 1.0, -1.0, 1.5, 1e16, 1e300, 1e-300, 2.0 ** 53,
           2.0 ** 53 + 2, 123456789.125, math.inf, -math.inf, math.nan],
     'mixed': [1, 1.0, True, '1', None, 'true', 'null', False, 0]},
    # strings: case, NUL, digests, JSON escapes, unicode
    {'s': ['', 'ÜBER', 'İstanbul', 'Straße', 'a\x00b', '#x', '"q"',
           'back\\slash', 'tab\tnew\nline', 'snow☃man', 'emoji \U0001F600',
           'ctl\x01\x1f', 'x' * 198, 'x' * 199, 'x' * 200, 'x' * 510,
           'x' * 511, 'x' * 512, 'x' * 513, '\u00e9' * 300, _LONG],
     'Mixed Case Key': 'Mixed Case Value'},
    # names: digest triggers, dots, JSON escapes, separators, unicode
    {'': 'empty key', '#k': 1, 'k\x00': 2, 'a.b': {'c': 3}, '=': '=',
     ':': ':', '"': '"', 'ключ': 'значение', 'n' * 200: 'n200',
     'n' * 201: 'n201', 'm' * 509: 5, 'm' * 510: 6, 'm' * 511: 7,
     'q"' * 255: 8, 'deep': {'n' * 150: {'o' * 60: 'long path'}}},
    # structure: lists of lists, lists of objects, empties, duplicates
    {'job_actions': [
        {'freezer_action': {'mode': 'fs', 'action': 'backup'},
         'max_retries': 3},
        {'freezer_action': {'mode': 'mysql', 'action': 'backup'},
         'max_retries': 3.0}],
     'grid': [[1, [2, [3]]], [{'x': [{'y': 'deep'}]}]],
     'empty_obj': {}, 'empty_list': [], 'nulls': [None, None],
     'again': {'again': {'again': 'again'}}},
]

# Names and scalars the query side turns into stored forms.
NAMES = ['level', '', '#k', 'k\x00', 'a.b.c', 'n' * 200, 'n' * 201,
         'm' * 510, 'm' * 511, '"', 'ключ']
VALUES = [None, True, False, 0, -0.0, 1, 1.0, 1.5, 2 ** 53, 2 ** 53 + 1,
          10 ** 400, math.inf, -math.inf, math.nan, '', '1', 'ÜBER',
          'a\x00b', '#x', 'x' * 198, 'x' * 199, 'x' * 511, 'x' * 512]
RANGES = [(None, None), (0, None), (None, 0), (-1.5, 2 ** 53),
          (-math.inf, math.inf), (1e300, 1e301)]
NEEDLES = ['', 'abc', 'ÜBER'.lower(), 'a\x00b', 'snow☃', '. -_/']


def _jsonable(value):
    """Floats that JSON cannot hold exactly as a number are tagged."""
    if isinstance(value, float):
        if math.isnan(value):
            return {'float': 'nan'}
        if math.isinf(value):
            return {'float': 'inf' if value > 0 else '-inf'}
        if value == 0 and math.copysign(1, value) < 0:
            return {'float': '-0.0'}
    if isinstance(value, dict):
        return {'object': [[k, _jsonable(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _document(value):
    if isinstance(value, dict):
        if 'float' in value:
            return float(value['float'])
        return {k: _document(v) for k, v in value['object']}
    if isinstance(value, list):
        return [_document(v) for v in value]
    return value


def current_forms():
    """The stored forms the code makes now."""
    return {
        'documents': [{
            'doc': _jsonable(doc),
            'sql_term_rows': _jsonable(models.term_rows(7, doc)),
            'es_search_fields': mappings.search_fields(doc),
        } for doc in DOCUMENTS],
        'names': [{'name': name, 'sql': models.index_form(name)}
                  for name in NAMES],
        'values': [{
            'value': _jsonable(value),
            'sql': models.value_form(value),
            'es_terms': [mappings.term_form(name, value) for name in NAMES],
        } for value in VALUES],
        'ranges': [{
            'low': _jsonable(low), 'high': _jsonable(high),
            'es': [list(mappings.number_bounds(name, low, high))
                   for name in NAMES],
        } for low, high in RANGES],
        'needles': [{'needle': needle,
                     'es': mappings.text_tokens(needle)}
                    for needle in NEEDLES],
    }


def _dump(forms):
    # ASCII only: the file shows every escape and control character.
    return json.dumps(forms, indent=1, ensure_ascii=True,
                      allow_nan=False) + '\n'


@pytest.fixture(scope='module')
def golden():
    return json.loads(GOLDEN.read_text(encoding='ascii'))


def test_the_documents_round_trip_through_the_file(golden):
    docs = [_document(entry['doc']) for entry in golden['documents']]
    assert _dump(_jsonable(docs)) == _dump(_jsonable(DOCUMENTS))


@pytest.mark.parametrize('i', range(len(DOCUMENTS)))
def test_sql_term_rows_are_unchanged(golden, i):
    entry = golden['documents'][i]
    rows = models.term_rows(7, _document(entry['doc']))
    assert _jsonable(rows) == entry['sql_term_rows']


@pytest.mark.parametrize('i', range(len(DOCUMENTS)))
def test_index_search_fields_are_unchanged(golden, i):
    entry = golden['documents'][i]
    fields = mappings.search_fields(_document(entry['doc']))
    assert fields == entry['es_search_fields']


def test_query_forms_are_unchanged(golden):
    assert json.loads(_dump(current_forms())) == golden


if __name__ == '__main__':
    GOLDEN.write_text(_dump(current_forms()), encoding='ascii')
    print(f'wrote {GOLDEN}')
