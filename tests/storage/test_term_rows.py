"""``models.term_rows`` (the fast walk) against its definition.

The definition: one row per distinct (path, key, value form) of
``storage.query.leaves``, in its order, with the column forms of
``models.value_form``, ``index_form`` and ``text_form``.
"""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from freezer_api.storage import query as q
from freezer_api.storage.sqlalchemy import models


def reference_rows(doc_pk, doc):
    rows, seen = [], set()
    for leaf in q.leaves(doc):
        value = models.value_form(leaf.value)
        marker = (leaf.path, leaf.key, value)
        if marker in seen:
            continue
        seen.add(marker)
        rows.append({'doc_pk': doc_pk, 'path': models.index_form(leaf.path),
                     'key': models.index_form(leaf.key), 'value': value,
                     'num': models._number(leaf.value),
                     'text': models.text_form(leaf.value)})
    return rows


scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-2 ** 80, max_value=2 ** 80),
    st.floats(allow_nan=False), st.just(1.0), st.just(-0.0),
    st.text(), st.text(min_size=190, max_size=230),
    st.sampled_from(['#x', 'a\x00b', 'ÜBER', '1', 'true', 'null']))
keys = st.one_of(st.text(max_size=8), st.sampled_from(
    ['a', 'b', '#k', 'x.y', 'k\x00', 'n' * 201]))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, documents, max_size=6))
def test_the_fast_walk_gives_the_rows_of_the_definition(doc):
    assert models.term_rows(7, doc) == reference_rows(7, doc)


def test_a_real_backup_document():
    doc = {'backup_name': 'mysql', 'hostname': 'node1', 'level': 0,
           'max_level': None, 'fs_real_path': '/var/lib/mysql',
           'time_stamp': 1700000000, 'size': 1.5e9, 'compression': 'gzip',
           'container': 'c', 'storages': [{'type': 'swift'},
                                          {'type': 'local'}],
           'vol_snap_path': '', 'engine_name': 'tar', 'dry_run': False,
           'tags': ['a', 'a', 'b'], 'nested': {'level': 0}}
    assert models.term_rows(1, doc) == reference_rows(1, doc)
