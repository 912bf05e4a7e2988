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
* a ``Range`` bounds a numeric value at an exact path, both ends inclusive.
"""

import dataclasses
import json
import math
from collections.abc import Iterator
from typing import Any

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


@dataclasses.dataclass(frozen=True)
class Leaf:
    path: str   # dotted path from the top, list levels omitted
    key: str    # the last object key on the path
    value: Any  # the scalar


def leaves(doc: Any, _path: str = '', _key: str = '') -> Iterator[Leaf]:
    """Yield every scalar of ``doc`` with its path and nearest key."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            key = str(key)
            yield from leaves(value, f'{_path}.{key}' if _path else key, key)
    elif isinstance(doc, list):
        for item in doc:
            yield from leaves(item, _path, _key)
    elif _path:
        yield Leaf(_path, _key, doc)


def canonical(value: Any) -> str:
    """Return the canonical JSON text of a scalar, the unit of equality.

    Integral floats collapse to integers so that ``1`` and ``1.0`` are equal,
    while booleans stay distinct from numbers.
    """
    if (isinstance(value, float) and math.isfinite(value)
            and value.is_integer()):
        value = int(value)
    return json.dumps(value, ensure_ascii=False, separators=(',', ':'))


def text_of(value: Any) -> str | None:
    """Return the lower-cased text ``_all`` searches in, or None for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower()
    return canonical(value).lower()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _term_hits(doc: dict, term: Term) -> bool:
    wanted = canonical(term.value)
    for leaf in leaves(doc):
        where = leaf.path if term.is_path else leaf.key
        if where == term.field and canonical(leaf.value) == wanted:
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
        if not any(needle in (text_of(leaf.value) or '')
                   for leaf in leaves(doc)):
            return False
    for rng in query.ranges:
        numbers = [_number(leaf.value) for leaf in leaves(doc)
                   if leaf.path == rng.path]
        if not any(n is not None
                   and (rng.low is None or n >= rng.low)
                   and (rng.high is None or n <= rng.high)
                   for n in numbers):
            return False
    return True
