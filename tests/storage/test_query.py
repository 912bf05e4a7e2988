"""Unit tests of freezer_api.storage.query, the search reference."""

import math

import pytest

from freezer_api.storage import query as q
from freezer_api.storage.query import Leaf
from freezer_api.storage.query import Query
from freezer_api.storage.query import Range
from freezer_api.storage.query import Term

DOC = {
    'name': 'Job One',
    'count': 3,
    'tags': ['a', ['b', ['c']]],
    'job_actions': [
        {'freezer_action': {'mode': 'fs', 'path': '/tmp'}, 'retries': 1},
        {'freezer_action': {'mode': 'mysql'}},
    ],
    'schedule': {'start': 10, 'end': 20.5, 'enabled': True, 'none': None},
    'empty': {}, 'nothing': [],
}


class TestLeaves:

    def test_paths_skip_list_levels(self):
        got = set((leaf.path, leaf.key, repr(leaf.value))
                  for leaf in q.leaves(DOC))
        assert got == {
            ('name', 'name', "'Job One'"),
            ('count', 'count', '3'),
            ('tags', 'tags', "'a'"), ('tags', 'tags', "'b'"),
            ('tags', 'tags', "'c'"),
            ('job_actions.freezer_action.mode', 'mode', "'fs'"),
            ('job_actions.freezer_action.path', 'path', "'/tmp'"),
            ('job_actions.retries', 'retries', '1'),
            ('job_actions.freezer_action.mode', 'mode', "'mysql'"),
            ('schedule.start', 'start', '10'),
            ('schedule.end', 'end', '20.5'),
            ('schedule.enabled', 'enabled', 'True'),
            ('schedule.none', 'none', 'None'),
        }

    def test_order_follows_the_document(self):
        assert [leaf.value for leaf in q.leaves({'a': [1, {'b': 2}], 'c': 3})
                ] == [1, 2, 3]

    def test_scalars_without_a_key_are_not_leaves(self):
        assert list(q.leaves('x')) == []
        assert list(q.leaves([1, 2])) == []
        assert list(q.leaves({})) == []

    def test_keys_become_strings(self):
        assert list(q.leaves({1: 'x'})) == [Leaf('1', '1', 'x')]

    def test_dotted_keys_stay_in_the_path(self):
        assert list(q.leaves({'a.b': {'c': 1}})) == [Leaf('a.b.c', 'c', 1)]


class TestCanonical:

    @pytest.mark.parametrize('value, text', [
        (1, '1'), (1.0, '1'), (-0.0, '0'), (1.5, '1.5'), (True, 'true'),
        (False, 'false'), (0, '0'), ('1', '"1"'), (None, 'null'),
        (1e20, '100000000000000000000'), (10 ** 20, '100000000000000000000'),
        ('ü"', '"ü\\""'), ('', '""'),
    ])
    def test_forms(self, value, text):
        assert q.canonical(value) == text

    def test_numbers_equal_as_json(self):
        assert q.canonical(1) == q.canonical(1.0)
        assert q.canonical(True) != q.canonical(1)
        assert q.canonical(False) != q.canonical(0)
        assert q.canonical('1') != q.canonical(1)

    def test_non_finite_floats_are_not_collapsed(self):
        assert q.canonical(math.inf) == 'Infinity'
        assert q.canonical(math.nan) == 'NaN'

    @pytest.mark.parametrize('value, text', [
        (None, None), ('AbC', 'abc'), ('ÄÖ', 'äö'), (True, 'true'),
        (1.0, '1'), (2.5, '2.5'), ('', ''),
    ])
    def test_text_of(self, value, text):
        assert q.text_of(value) == text


class TestQueryObjects:

    def test_empty_query_is_false(self):
        assert not Query()
        assert not q.EMPTY_QUERY
        assert Query(match=(Term('a', 1),))
        assert Query(match_not=(Term('a', 1),))
        assert Query(text=('x',))
        assert Query(ranges=(Range('a'),))

    def test_term_is_path(self):
        assert Term('a.b', 1).is_path
        assert not Term('a', 1).is_path

    def test_range_defaults(self):
        assert Range('a') == Range('a', None, None)


def hits(query):
    return q.matches(DOC, query)


class TestMatches:

    def test_empty_query_matches_everything(self):
        assert hits(Query())
        assert q.matches({}, Query())

    @pytest.mark.parametrize('term, expected', [
        (Term('mode', 'fs'), True),            # bare key at any depth
        (Term('mode', 'mysql'), True),
        (Term('mode', 'FS'), False),           # equality is exact
        (Term('name', 'Job One'), True),
        (Term('start', 10), True),
        (Term('freezer_action', 'fs'), False),  # objects are not values
        (Term('job_actions.freezer_action.mode', 'mysql'), True),
        (Term('freezer_action.mode', 'fs'), False),  # path from the top
        (Term('schedule.start', 10), True),
        (Term('schedule.start', 10.0), True),   # 10 == 10.0
        (Term('schedule.start', '10'), False),  # "10" != 10
        (Term('schedule.enabled', True), True),
        (Term('schedule.enabled', 1), False),   # true != 1
        (Term('count', 3.0), True),
        (Term('tags', 'a'), True),              # scalars inside lists
        (Term('tags', 'c'), True),              # at any list depth
        (Term('none', None), True),
        (Term('schedule.none', None), True),
        (Term('empty', None), False),
        (Term('nothing', None), False),
        (Term('missing', None), False),
        (Term('retries', True), False),
    ])
    def test_terms(self, term, expected):
        assert hits(Query(match=(term,))) is expected
        assert hits(Query(match_not=(term,))) is not expected

    def test_all_terms_must_match(self):
        assert hits(Query(match=(Term('mode', 'fs'), Term('count', 3))))
        assert not hits(Query(match=(Term('mode', 'fs'), Term('count', 4))))
        assert not hits(Query(match=(Term('count', 3),),
                              match_not=(Term('mode', 'mysql'),)))

    @pytest.mark.parametrize('needle, expected', [
        ('job', True), ('JOB ONE', True), ('b one', True), ('/tm', True),
        ('mysql', True), ('true', True), ('20.5', True), ('null', False),
        ('none', False), ('tags', False), ('x', False), ('', True),
    ])
    def test_text(self, needle, expected):
        assert hits(Query(text=(needle,))) is expected

    def test_every_text_must_match(self):
        assert hits(Query(text=('job', 'fs')))
        assert not hits(Query(text=('job', 'nope')))

    def test_empty_text_needs_a_leaf(self):
        assert not q.matches({}, Query(text=('',)))
        assert q.matches({'a': None}, Query(text=('',)))

    @pytest.mark.parametrize('rng, expected', [
        (Range('schedule.start', 10, 10), True),   # inclusive
        (Range('schedule.start', 10.5, None), False),
        (Range('schedule.start', None, 9.99), False),
        (Range('schedule.end', 20.5, 21), True),
        (Range('schedule.start'), True),
        (Range('start', 0, 100), False),            # exact path only
        (Range('count', 3, 3), True),
        (Range('job_actions.retries', 1, 1), True),  # through lists
        (Range('schedule.enabled', 0, 1), False),   # booleans aren't numbers
        (Range('name'), False),                     # nor strings
        (Range('schedule.none'), False),
        (Range('schedule.start', 20, 10), False),
    ])
    def test_ranges(self, rng, expected):
        assert hits(Query(ranges=(rng,))) is expected

    def test_range_needs_one_value_within_both_bounds(self):
        doc = {'v': [1, 10]}
        assert not q.matches(doc, Query(ranges=(Range('v', 2, 9),)))
        assert q.matches(doc, Query(ranges=(Range('v', 5, 10),)))
        assert not q.matches(doc, Query(ranges=(Range('v', 2, 9),
                                                Range('v', 0, 0))))
