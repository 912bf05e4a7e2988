"""``storage.terms``, the index rules of both engines, against their
definitions.

The definition of the leaves is the plain recursive walk below; the SQL
term rows are one row per distinct (path, key, value form) of the leaves,
in order, with the column forms of ``sql_value``, ``sql_name`` and
``sql_text``; the Elasticsearch fields are the sets of the term forms of
the leaves. (The exact stored forms are frozen in test_terms_golden.py.)
"""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from freezer_api.storage import query as q
from freezer_api.storage import terms
from freezer_api.storage.elasticsearch import mappings
from freezer_api.storage.sqlalchemy import models


def reference_leaves(doc, path='', key=''):
    if isinstance(doc, dict):
        for name, value in doc.items():
            name = str(name)
            yield from reference_leaves(
                value, f'{path}.{name}' if path else name, name)
    elif isinstance(doc, list):
        for item in doc:
            yield from reference_leaves(item, path, key)
    elif path:
        yield path, key, doc


def reference_rows(doc_pk, doc):
    rows, seen = [], set()
    for path, key, scalar in reference_leaves(doc):
        value = terms.sql_value(scalar)
        marker = (path, key, value)
        if marker in seen:
            continue
        seen.add(marker)
        rows.append({'doc_pk': doc_pk, 'path': terms.sql_name(path),
                     'key': terms.sql_name(key), 'value': value,
                     'num': terms.number(scalar),
                     'text': terms.sql_text(scalar)})
    return rows


def reference_fields(doc):
    keys, paths, nums, texts = set(), set(), set(), set()
    for path, key, scalar in reference_leaves(doc):
        keys.add(terms.es_term(key, scalar))
        paths.add(terms.es_term(path, scalar))
        if terms.number(scalar) is not None:
            nums.add(terms.es_number(path, terms.number(scalar)))
        if terms.text_of(scalar):
            texts.add(terms.es_text(terms.text_of(scalar)))
    return {'keys': sorted(keys), 'paths': sorted(paths),
            'nums': sorted(nums), 'text': sorted(texts)}


scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-2 ** 80, max_value=2 ** 80),
    st.integers(min_value=2 ** 53 - 2, max_value=2 ** 53 + 2),
    st.floats(), st.just(1.0), st.just(-0.0),
    st.text(), st.text(min_size=190, max_size=230),
    st.sampled_from(['#x', 'a\x00b', 'ÜBER', '1', 'true', 'null']))
keys = st.one_of(st.text(max_size=8), st.sampled_from(
    ['a', 'b', '#k', 'x.y', 'k\x00', 'n' * 201, 'm' * 511]))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_the_walk_gives_the_leaves_of_the_definition(doc):
    assert terms.walk(doc) == list(reference_leaves(doc))
    assert list(terms.leaves(doc)) == [
        terms.Leaf(*leaf) for leaf in reference_leaves(doc)]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, documents, max_size=6))
def test_the_sql_rows_are_those_of_the_definition(doc):
    assert terms.sql_rows(7, doc) == reference_rows(7, doc)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, documents, max_size=6))
def test_the_es_fields_are_those_of_the_definition(doc):
    assert terms.es_fields(doc) == reference_fields(doc)


def test_a_real_backup_document():
    doc = {'backup_name': 'mysql', 'hostname': 'node1', 'level': 0,
           'max_level': None, 'fs_real_path': '/var/lib/mysql',
           'time_stamp': 1700000000, 'size': 1.5e9, 'compression': 'gzip',
           'container': 'c', 'storages': [{'type': 'swift'},
                                          {'type': 'local'}],
           'vol_snap_path': '', 'engine_name': 'tar', 'dry_run': False,
           'tags': ['a', 'a', 'b'], 'nested': {'level': 0}}
    assert terms.sql_rows(1, doc) == reference_rows(1, doc)
    assert terms.es_fields(doc) == reference_fields(doc)


def test_numbers_are_doubles_that_a_range_can_compare():
    assert terms.number(3) == 3.0
    assert terms.number(2 ** 53 + 1) == float(2 ** 53)
    assert terms.number(True) is None
    assert terms.number('1') is None
    assert terms.number(float('nan')) is None
    # beyond a double: no number rather than an OverflowError
    assert terms.number(10 ** 400) is None
    assert not q.matches({'n': 10 ** 400}, q.Query(ranges=(
        q.Range('n', low=0),)))


def test_digests_replace_long_terms_only():
    assert terms.limited('x' * 5, 5) == 'x' * 5
    assert terms.limited('x' * 6, 5) == terms.digest('x' * 6)
    assert terms.digest('x').startswith('#')
    assert len(terms.digest('x' * 1000)) == 65
    assert terms.sql_name('#short') == terms.digest('#short')
    assert terms.sql_name('a\x00') == terms.digest('a\x00')


def test_the_engines_use_these_rules():
    # the old names stay where the drivers and tools look for them
    assert models.term_rows is terms.sql_rows
    assert models.index_form is terms.sql_name
    assert models.value_form is terms.sql_value
    assert models.text_form is terms.sql_text
    assert models.INDEX_LENGTH == terms.SQL_LENGTH
    assert mappings.search_fields is terms.es_fields
    assert mappings.term_form is terms.es_term
    assert mappings.number_bounds is terms.es_number_bounds
    assert mappings.text_tokens is terms.es_text
    assert mappings.TERM_LENGTH == terms.ES_LENGTH
    assert q.leaves is terms.leaves and q.canonical is terms.canonical
