"""Reading request bodies, paging and preconditions."""

import json
import re
import sys

import falcon

from freezer_api.core.base import Page
from freezer_api.core.errors import InvalidInput

# Deeper documents are refused: nothing legitimate nests this far, and the
# rules walk documents recursively.
MAX_DEPTH = 64
_VERSION = re.compile(r'[0-9]+')
_SUSPICIOUS = ('\\u0000', '\\ud8', '\\ud9', '\\uda', '\\udb', '\\udc',
               '\\udd', '\\ude', '\\udf', '\x00')


def _reject_constant(name):
    raise ValueError(f'{name} is not valid JSON')


# Whole numbers written with a fraction or exponent (2.0, 1e3) up to this
# size are read as integers: JSON has one number type, and integer fields
# such as session_tag must compare equal however the client wrote them.
_EXACT_INTEGER_LIMIT = 2 ** 53


def _out_of_range(text):
    shown = text if len(text) <= 40 else text[:40] + '...'
    return ValueError(f'the number {shown} is out of range')


def _finite_float(text):
    value = float(text)
    if value in (float('inf'), float('-inf')):
        raise _out_of_range(text)
    if value.is_integer() and abs(value) <= _EXACT_INTEGER_LIMIT:
        return int(value)
    return value


# Integers past the largest double are refused like 1e400: no store
# indexes them as numbers, and Python refuses to read integers of more
# than 4300 digits with a message about its own internals.
_MAX_INTEGER = int(sys.float_info.max)
_MAX_INTEGER_DIGITS = len(str(_MAX_INTEGER))


def _bounded_int(text):
    if len(text.lstrip('-')) > _MAX_INTEGER_DIGITS:
        raise _out_of_range(text)
    value = int(text)
    if abs(value) > _MAX_INTEGER:
        raise _out_of_range(text)
    return value


def _check_depth(value, depth=0):
    if depth > MAX_DEPTH:
        raise InvalidInput(f'The JSON document nests deeper than '
                           f'{MAX_DEPTH} levels')
    if isinstance(value, dict):
        for item in value.values():
            if isinstance(item, (dict, list)):
                _check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                _check_depth(item, depth + 1)


def _check_strings(value):
    """Refuse NUL characters and lone surrogates, which no store keeps."""
    if isinstance(value, str):
        if '\x00' in value:
            raise InvalidInput('Strings must not contain NUL characters')
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            raise InvalidInput('Strings must be valid Unicode')
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def read_json(req, max_size, empty=None):
    """Return the decoded JSON body, or ``empty`` when there is none.

    ``Content-Type`` is not enforced: old clients post without it.
    """
    length = req.content_length
    if length is not None and length > max_size:
        raise falcon.HTTPContentTooLarge(
            title='Request Entity Too Large',
            description=f'The body must be at most {max_size} bytes')
    raw = req.bounded_stream.read(max_size + 1)
    if len(raw) > max_size:
        raise falcon.HTTPContentTooLarge(
            title='Request Entity Too Large',
            description=f'The body must be at most {max_size} bytes')
    if not raw.strip():
        return empty
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        raise InvalidInput('Malformed JSON: the body is not valid UTF-8')
    try:
        body = json.loads(text, parse_constant=_reject_constant,
                          parse_float=_finite_float, parse_int=_bounded_int)
    except (ValueError, RecursionError) as ex:
        reason = (str(ex) if isinstance(ex, ValueError)
                  else 'nested too deeply')
        raise InvalidInput(f'Malformed JSON: {reason[:200]}')
    _check_depth(body)
    if any(marker in text.lower() for marker in _SUSPICIOUS):
        _check_strings(body)
    return body


def _int_param(req, name, default):
    value = req.params.get(name)
    if value is None:
        return default
    if isinstance(value, list):
        raise InvalidInput(f'{name} must be given once')
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f'{name} must be an integer')


def count_param(req, default):
    """``?count=``: how many items an answer lists (checked by the core)."""
    return _int_param(req, 'count', default)


def page(req) -> Page:
    return Page(limit=_int_param(req, 'limit', Page.limit),
                offset=_int_param(req, 'offset', Page.offset))


def bool_param(req, name):
    value = req.params.get(name)
    if value is None:
        return False
    if isinstance(value, list):
        raise InvalidInput(f'{name} must be given once')
    lowered = value.lower()
    if lowered in ('1', 'true', 'yes', 'on'):
        return True
    if lowered in ('0', 'false', 'no', 'off', ''):
        return False
    raise InvalidInput(f'{name} must be true or false')


def expected_version(req):
    """The version named by ``If-Match``, or None (spec D7)."""
    value = req.get_header('If-Match')
    if value is None or value.strip() == '*':
        return None
    value = value.strip()
    if value.startswith('W/'):
        value = value[2:]
    value = value.strip('"')
    # NOTE: str.isdigit() accepts digits int() refuses ('²') and int()
    # refuses strings over 4300 digits: both were 500s.
    if not _VERSION.fullmatch(value):
        raise InvalidInput('If-Match must be a document version number')
    if len(value) > 18:
        return -1  # a number, but no document's version: 412
    return int(value)
