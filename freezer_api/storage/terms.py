"""The search index terms of a document: one set of rules for every engine.

A document is indexed by its leaves (spec D5): every scalar with its dotted
path from the top (list levels omitted) and its nearest key. Each engine
stores the leaves in its own layout, from the same rules:

* ``leaves``/``walk``: the leaves, in document order;
* ``canonical``: the JSON text of a scalar, the unit of equality (``1`` and
  ``1.0`` are equal, ``true``, ``1`` and ``"1"`` are not);
* ``text_of``: the lower-cased text an ``_all`` search looks in;
* ``number``: the value a range compares, or None (booleans, NaN and
  integers beyond a double are no numbers);
* ``digest``: what replaces a term too long to store as is, so that
  equality stays exact. A digest starts with ``#``; a stored form that
  could start with ``#`` otherwise is digested too.

The SQL driver's term rows (``sql_rows``) and the Elasticsearch driver's
search fields (``es_fields``) are made here, and so are the forms their
queries look up. Rows and documents already stored were made by these
exact rules: changing a form needs a migration of the SQL term rows and a
reindex of Elasticsearch (tests/storage/golden_terms.json holds the forms).
"""

import dataclasses
import hashlib
import json
import math
import struct
from json import encoder as json_encoder
from typing import Any
from typing import Iterator

__all__ = ['Leaf', 'leaves', 'walk', 'canonical', 'text_of', 'number',
           'EXACT_INT', 'digest', 'limited',
           'SQL_LENGTH', 'sql_name', 'sql_value', 'sql_text', 'sql_rows',
           'ES_LENGTH', 'es_term', 'es_number', 'es_number_bounds',
           'es_text', 'es_fields']


# -- the rules ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Leaf:
    path: str   # dotted path from the top, list levels omitted
    key: str    # the last object key on the path
    value: Any  # the scalar


def walk(doc: Any) -> list[tuple[str, str, Any]]:
    """Return ``(path, key, scalar)`` of every leaf of ``doc``, in order.

    Object keys are taken as text; a list keeps the path and key of its
    parent; scalars outside any object (a bare scalar, a list of scalars at
    the top) have no path and are no leaves.

    PERF: every write walks its document; a stack, not generators.
    """
    out = []
    stack: list[tuple[str, str, Any]] = [('', '', doc)]
    while stack:
        path, key, node = stack.pop()
        if isinstance(node, dict):
            children = []
            for name, value in node.items():
                name = str(name)
                children.append((f'{path}.{name}' if path else name, name,
                                 value))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend((path, key, item) for item in reversed(node))
        elif path:
            out.append((path, key, node))
    return out


def leaves(doc: Any) -> Iterator[Leaf]:
    """Yield every scalar of ``doc`` with its path and nearest key."""
    for path, key, value in walk(doc):
        yield Leaf(path, key, value)


def canonical(value: Any) -> str:
    """Return the canonical JSON text of a scalar, the unit of equality.

    Integral floats collapse to integers so that ``1`` and ``1.0`` are equal,
    while booleans stay distinct from numbers.
    """
    if (isinstance(value, float) and math.isfinite(value)
            and value.is_integer()):
        value = int(value)
    return json.dumps(value, ensure_ascii=False, separators=(',', ':'))


# json.dumps(value, ensure_ascii=False) of a str, without its dispatch:
# the canonical form of a string.
_json_string = json_encoder.encode_basestring


def text_of(value: Any) -> str | None:
    """Return the lower-cased text ``_all`` searches in, or None for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower()
    return canonical(value).lower()


def number(value: Any) -> float | None:
    """Return the double a range compares ``value`` as, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    if result != result:  # NaN never satisfies a range
        return None
    return result


# Integers this small convert to text and double exactly and quickly.
EXACT_INT = 2 ** 53


def digest(text: str) -> str:
    """The fixed-size stand-in of a term too long to store as is."""
    return '#' + hashlib.sha256(text.encode('utf-8')).hexdigest()


def limited(text: str, length: int) -> str:
    """``text``, or its digest when longer than ``length`` characters."""
    return text if len(text) <= length else digest(text)


# -- SQL: rows of the <kind>_terms table --------------------------------------
#
# One row per distinct (path, key, value) leaf: ``path`` and ``key`` the
# names as they are (``sql_name``), ``value`` the canonical JSON text
# (``sql_value``), ``num`` the number, ``text`` the lower-cased text
# (``sql_text``).

# Longest key, path or value text stored as is (the columns' size).
SQL_LENGTH = 200


def sql_name(name: str) -> str:
    """Return how a key or a path is stored in the index.

    Names longer than ``SQL_LENGTH`` become a digest. Names that already
    start with ``#`` are digested too, so a stored name that looks like a
    digest is always one.
    """
    # NOTE: PostgreSQL text cannot hold NUL; a digest keeps such names exact.
    if len(name) > SQL_LENGTH or name.startswith('#') or '\x00' in name:
        return digest(name)
    return name


def _sql_plain_name(name: str) -> bool:
    """True when ``sql_name(name)`` is ``name`` itself."""
    return (len(name) <= SQL_LENGTH and name[:1] != '#'
            and '\x00' not in name)


def sql_text(value: Any) -> str | None:
    """Return the ``text`` column of a scalar (for ``_all`` searches).

    NUL, which PostgreSQL text cannot hold, is stored as U+FFFD, and the
    driver rewrites needles the same way.
    """
    text = text_of(value)
    return None if text is None else text.replace('\x00', '\ufffd')


def sql_value(value: Any) -> str:
    """Return how a scalar is stored in the index's ``value`` column.

    The canonical JSON text, or for long ones a digest of it. Canonical JSON
    never starts with ``#``, so the two forms cannot collide.
    """
    return limited(canonical(value), SQL_LENGTH)


def _sql_scalar(value: Any) -> tuple[str, float | None, str | None]:
    """(value, num, text) columns of one scalar; the hot cases first."""
    if isinstance(value, str):
        return (limited(_json_string(value), SQL_LENGTH), None,
                value.lower().replace('\x00', '\ufffd'))
    if value is None:
        return 'null', None, None
    if value is True or value is False:
        return ('true', None, 'true') if value else ('false', None, 'false')
    if type(value) is int and -EXACT_INT < value < EXACT_INT:
        text = str(value)
        return text, float(value), text
    return sql_value(value), number(value), sql_text(value)


def sql_rows(doc_pk: Any, doc: Any) -> list[dict[str, Any]]:
    """Return the index rows of one document, without duplicates.

    The leaves of ``walk``, in its order, but each (path, key, value form)
    once.

    PERF: every write computes them (twice for an update); each distinct
    scalar is converted once, through the cheapest exact path.
    """
    rows = []
    seen = set()
    forms: dict = {}
    for path, key, node in walk(doc):
        # NOTE: by type too, or 1, 1.0 and True would share forms
        scalar = (type(node), node)
        try:
            value, num, text = forms[scalar]
        except KeyError:
            value, num, text = forms[scalar] = _sql_scalar(node)
        marker = (path, key, value)
        if marker in seen:
            continue
        seen.add(marker)
        rows.append({
            'doc_pk': doc_pk,
            'path': path if _sql_plain_name(path) else sql_name(path),
            'key': key if _sql_plain_name(key) else sql_name(key),
            'value': value,
            'num': num,
            'text': text,
        })
    return rows


# -- Elasticsearch: the keys, paths, nums and text fields ---------------------
#
# ``keys``/``paths``: "<key or path as JSON>=<canonical value>" per leaf;
# ``nums``: "<path as JSON>:<sortable hex of the double>" per numeric leaf;
# ``text``: the lower-cased text of each scalar, one token per character.

# Longest term stored as is; longer ones become a digest, so that Lucene's
# 32766-byte term limit is never reached.
ES_LENGTH = 512


def _es_name(name: str) -> str:
    # NOTE: a JSON string ends at its first unescaped quote, so the name
    # part of a term can never run into the value part.
    return json.dumps(name, ensure_ascii=False)


def es_term(name: str, value: Any) -> str:
    """The ``keys``/``paths`` term of a key or path and a scalar."""
    return limited(f'{_es_name(name)}={canonical(value)}', ES_LENGTH)


def _sortable(double: float) -> str:
    """16 hex digits that sort as ``double`` does."""
    if double == 0:
        double = 0.0  # -0.0 and 0.0 are equal
    (bits,) = struct.unpack('>Q', struct.pack('>d', double))
    if bits & (1 << 63):
        bits = ~bits & 0xFFFFFFFFFFFFFFFF
    else:
        bits |= 1 << 63
    return f'{bits:016x}'


def _es_num_prefix(path: str) -> str:
    return limited(_es_name(path), ES_LENGTH) + ':'


def es_number(path: str, double: float) -> str:
    """The ``nums`` term of a number at a path."""
    return _es_num_prefix(path) + _sortable(double)


def es_number_bounds(path: str, low: float | None,
                     high: float | None) -> tuple[str, str]:
    """Smallest and largest ``nums`` terms within [low, high] at ``path``."""
    prefix = _es_num_prefix(path)
    lowest = prefix + ('0' * 16 if low is None else _sortable(float(low)))
    highest = prefix + ('f' * 16 if high is None else _sortable(float(high)))
    return lowest, highest


def es_text(text: str) -> str:
    """One token per character, separated by spaces.

    Letters a-z and digits stand for themselves; any other character is
    ``_`` and its code point in hex. Searching a substring is then an exact
    phrase query on these tokens: positions make it exact for any length,
    without the automaton limits of wildcard queries.
    """
    return ' '.join(
        c if ('a' <= c <= 'z' or '0' <= c <= '9') else f'_{ord(c):x}'
        for c in text)


def es_fields(doc: Any) -> dict[str, list[str]]:
    """Return the search index of a document (spec D5)."""
    keys, paths, nums, texts = set(), set(), set(), set()
    for path, key, value in walk(doc):
        keys.add(es_term(key, value))
        paths.add(es_term(path, value))
        double = number(value)
        if double is not None:
            nums.add(es_number(path, double))
        text = text_of(value)
        if text:
            texts.add(es_text(text))
    return {'keys': sorted(keys), 'paths': sorted(paths),
            'nums': sorted(nums), 'text': sorted(texts)}
