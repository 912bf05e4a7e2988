"""The search query every driver understands, and its reference semantics.

``freezer_api.core.search`` turns a client's search document into a
``Query``; drivers translate it into their engine's language. ``matches`` is
the executable definition of the semantics, used by the contract tests as the
oracle every driver must agree with.

Semantics (spec D5):

* a ``Term`` whose field has no dot matches when a key of that name occurs at
  any depth (inside objects and lists of objects) with an equal value;
* a dotted field is an exact path from the top; list levels are transparent,
  so ``job_actions.freezer_action.mode`` reaches every action;
* a scalar inside a list matches as if it stood alone (``tags: ["a"]``
  matches ``{"tags": "a"}``);
* values compare as JSON: ``1 == 1.0``, but ``true != 1`` and ``"1" != 1``;
* ``text`` entries are case-insensitive substrings of any scalar value;
* a ``Range`` bounds a numeric value at an exact path, both ends inclusive
  (a number beyond a double, or NaN, is in no range).

The leaves and the scalar forms are those of ``storage.terms``, the index
rules of every engine.
"""

import dataclasses
from typing import Any

from freezer_api.storage import terms

__all__ = ['Term', 'Range', 'Query', 'Leaf', 'leaves', 'canonical',
           'text_of', 'matches']


@dataclasses.dataclass(frozen=True)
class Term:
    field: str
    value: Any  # a JSON scalar: str, int, float, bool or None

    @property
    def is_path(self) -> bool:
        return '.' in self.field


@dataclasses.dataclass(frozen=True)
class Range:
    path: str
    low: float | None = None
    high: float | None = None


@dataclasses.dataclass(frozen=True)
class Query:
    match: tuple[Term, ...] = ()
    match_not: tuple[Term, ...] = ()
    text: tuple[str, ...] = ()
    ranges: tuple[Range, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.match or self.match_not or self.text or self.ranges)


EMPTY_QUERY = Query()


# Kept here for the callers that knew them here.
Leaf = terms.Leaf
leaves = terms.leaves
canonical = terms.canonical
text_of = terms.text_of


def _term_hits(doc: dict, term: Term) -> bool:
    wanted = canonical(term.value)
    for path, key, value in terms.walk(doc):
        where = path if term.is_path else key
        if where == term.field and canonical(value) == wanted:
            return True
    return False


def matches(doc: dict, query: Query) -> bool:
    """Tell whether ``doc`` satisfies ``query`` (the reference semantics)."""
    if not all(_term_hits(doc, term) for term in query.match):
        return False
    if any(_term_hits(doc, term) for term in query.match_not):
        return False
    for needle in query.text:
        needle = needle.lower()
        if not any(needle in (text_of(value) or '')
                   for _, _, value in terms.walk(doc)):
            return False
    for rng in query.ranges:
        numbers = [terms.number(value) for path, _, value
                   in terms.walk(doc) if path == rng.path]
        if not any(n is not None
                   and (rng.low is None or n >= rng.low)
                   and (rng.high is None or n <= rng.high)
                   for n in numbers):
            return False
    return True
