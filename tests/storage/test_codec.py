"""Stored JSON is parsed by orjson, and by ``json`` where orjson refuses
or would change a value: both give the document ``json`` gives. And the
records the drivers make for a page are ordinary records."""

import json

import pytest

from freezer_api.storage import codec

TEXTS = [
    '{"a":1,"b":[1.5,-0.0,1e300,"x"],"c":{"d":null,"e":true}}',
    '{"big":123456789012345678901234567890}',
    '{"u64":18446744073709551616,"i64":-9223372036854775809}',
    '{"fits":9223372036854775807,"small":-0,"id":"1234567890123456789"}',
    '{"n":NaN,"i":-Infinity}',
    '{"lone":"\\ud800"}',
    '{"dup":1,"dup":2}',
    '{"text":"caf\\u00e9 \\u2603 \\ud83d\\ude00"}',
]


@pytest.mark.parametrize('text', TEXTS)
def test_same_document_as_json(text):
    parsed = codec.loads(text)
    expected = json.loads(text)
    assert json.dumps(parsed, sort_keys=True) == json.dumps(
        expected, sort_keys=True)
    assert _types(parsed) == _types(expected)


def _types(value):
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


def test_bytes_too():
    assert codec.loads(b'{"a":[1]}') == {'a': [1]}
    assert codec.loads(b'{"a":12345678901234567890123}') == {
        'a': 12345678901234567890123}


def test_not_json_still_fails():
    with pytest.raises(ValueError):
        codec.loads('{"a":')


def test_a_record_made_for_a_page_is_the_same_record():
    """``Record.made`` (the drivers' lists) skips the dataclass's
    ``__init__``: the record must still equal, hash, print and refuse
    changes like one made the usual way."""
    import dataclasses

    from freezer_api.storage.base import Record
    fields = ('jobs', 'j1', 'p', 'u', 3, 17, {'a': [1]})
    made, usual = Record.made(*fields), Record(*fields)
    assert made == usual and repr(made) == repr(usual)
    assert dataclasses.astuple(made) == dataclasses.astuple(usual)
    assert dataclasses.replace(made, version=4).version == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.version = 5
