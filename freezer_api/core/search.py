"""Turn a client's search document into a storage ``Query`` (spec D5).

Accepted form (sent as the JSON body of a list request)::

    {"match": [{"<field>": <scalar>}, ...],
     "match_not": [{"<field>": <scalar>}, ...],
     "time_after": <epoch>, "time_before": <epoch>}   # backups only

``{"_all": "text"}`` in ``match`` is a case-insensitive substring search over
every value. Its legacy form, a JSON list of ``{field: value}`` objects
encoded in the string, is read as more ``match`` entries.
"""

import json
import math

from freezer_api.core.errors import InvalidInput
from freezer_api.storage.query import Query
from freezer_api.storage.query import Range
from freezer_api.storage.query import Term

TIME_STAMP_PATH = 'backup_metadata.time_stamp'
# Bounds of one search (issue 13): every clause costs the store an index
# probe, every _all needle a scan of the caller's values, and a longer
# needle a slower scan. The store's own time limit ([database] and
# [elasticsearch] query_timeout) stops whatever still runs too long.
MAX_TERMS = 50
MAX_TEXT_TERMS = 5
MAX_FIELD_LENGTH = 255
MAX_VALUE_LENGTH = 256
SEARCH_KEYS = {'match', 'match_not', 'time_after', 'time_before'}

_SCALARS = (str, int, float, bool, type(None))


def _entries(value, name):
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidInput(f'{name} must be a list of objects')
    for entry in value:
        if not isinstance(entry, dict) or not entry:
            raise InvalidInput(
                f'{name} entries must be objects like {{"field": value}}')
        yield from entry.items()


def _term(field, value, name):
    if not field or len(field) > MAX_FIELD_LENGTH or field.startswith(
            '.') or field.endswith('.') or '..' in field:
        raise InvalidInput(f'{name}: invalid field name {field[:80]!r}')
    if not isinstance(value, _SCALARS):
        raise InvalidInput(
            f'{name}: the value of {field!r} must be a string, number, '
            f'boolean or null')
    if isinstance(value, float) and value != value:  # NaN never matches
        raise InvalidInput(f'{name}: the value of {field!r} is not a number')
    _check_length(value, f'{name}: the value of {field[:80]!r}')
    return Term(field, value)


def _check_length(value, what):
    if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
        raise InvalidInput(f'{what} is longer than {MAX_VALUE_LENGTH} '
                           f'characters')


def _legacy_all(text):
    """Read the JSON-list form of ``_all``; None when it is plain text."""
    try:
        decoded = json.loads(text)
    except ValueError:
        return None
    if not isinstance(decoded, list) or not decoded or not all(
            isinstance(item, dict) for item in decoded):
        return None
    return decoded


def _epoch(value, name):
    message = f'{name} must be an epoch time in seconds'
    if isinstance(value, str):
        # NOTE: int() refuses over 4300 digits with a message about
        # Python's internals; no epoch time has more than 20.
        if len(value.strip()) > 20:
            raise InvalidInput(message)
        try:
            value = int(value)
        except ValueError:
            raise InvalidInput(message)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(message)
    # stores compare times as doubles: a bound past their range is refused
    try:
        if not math.isfinite(float(value)):
            raise InvalidInput(message)
    except OverflowError:
        raise InvalidInput(message) from None
    return value


def parse(search, kind: str) -> Query:
    """Validate ``search`` (already JSON-decoded) and build the query."""
    if search is None:
        return Query()
    if not isinstance(search, dict):
        raise InvalidInput('The search document must be a JSON object')
    unknown = sorted(set(search) - SEARCH_KEYS)
    if unknown:
        raise InvalidInput(f'Unknown search keys: {", ".join(unknown)}')

    match: list[Term] = []
    match_not: list[Term] = []
    text: list[str] = []
    for field, value in _entries(search.get('match', []), 'match'):
        if field == '_all':
            if not isinstance(value, str):
                raise InvalidInput('match: _all takes a string')
            legacy = _legacy_all(value)
            if legacy is None:
                _check_length(value, 'match: the value of _all')
                text.append(value)
            else:
                match.extend(_term(f, v, 'match')
                             for f, v in _entries(legacy, '_all'))
        else:
            match.append(_term(field, value, 'match'))
    for field, value in _entries(search.get('match_not', []), 'match_not'):
        if field == '_all':
            raise InvalidInput('match_not does not support _all')
        match_not.append(_term(field, value, 'match_not'))
    if len(match) + len(match_not) + len(text) > MAX_TERMS:
        raise InvalidInput(f'At most {MAX_TERMS} search terms are allowed')
    if len(text) > MAX_TEXT_TERMS:
        raise InvalidInput(f'At most {MAX_TEXT_TERMS} _all terms are '
                           f'allowed')

    ranges = []
    if 'time_after' in search or 'time_before' in search:
        if kind != 'backups':
            raise InvalidInput(
                'time_after and time_before apply to backups only')
        low = search.get('time_after')
        high = search.get('time_before')
        ranges.append(Range(
            TIME_STAMP_PATH,
            None if low is None else _epoch(low, 'time_after'),
            None if high is None else _epoch(high, 'time_before')))
    return Query(match=tuple(match), match_not=tuple(match_not),
                 text=tuple(text), ranges=tuple(ranges))
