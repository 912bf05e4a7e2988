"""The examples of doc/api-reference.rst, replayed against the service.

Each example is a ``.. code-block:: http`` request followed by one with the
response. They run in order on one in-process app (SQLite), as written
(v2) and once more with ``/v2/proj-a/`` turned into ``/v1/``, so v1 must
give the same answers. The status line, every header shown and the body
must match the real answer, with these placeholders in responses:

* ``"{{name}}"`` (a whole JSON string, or a header value): the first one
  takes the real value, later ones must equal it; ``{{name}}`` in later
  requests is replaced by it;
* ``"{{*}}"``: any value;
* a ``"...": "..."`` member: the real object may have more members.

In the v1 replay a backup document (an object with ``backup_id`` and
``backup_metadata``) must also carry ``"user_name": "alice"``: v1 keeps
the seed's shape, v2 has upstream's current one (spec D13).

Each example must also agree with the OpenAPI document, and together the
examples must call every documented operation.
"""

import json
import pathlib
import re
import textwrap
import uuid

import falcon.testing
import pytest

from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api.api import openapi
from tests.api.test_openapi import METHODS
from tests.api.test_openapi import Conformance
from tests.api.test_openapi import sqlite_storage  # noqa: F401
from tests.conftest import Clock

REFERENCE = (pathlib.Path(__file__).resolve().parents[2] / 'doc'
             / 'api-reference.rst')
PROJECT = 'proj-a'
V2_PREFIX = f'/v2/{PROJECT}/'
# who the examples run as (they leave X-Auth-Token out)
USER = 'alice'
IDENTITY = {'X-Auth-Token': f'{USER}:{PROJECT}', 'X-Roles': 'member,reader'}
HOST = 'backup.example.org:9090'
PLACEHOLDER = re.compile(r'\{\{([\w*]+)\}\}')
HEADING = re.compile(r'^``([A-Z]+) (/\S*)``$')


class Example:
    def __init__(self, line, request, response):
        self.line = line
        self.request = request
        self.response = response

    def __repr__(self):
        return f'api-reference.rst:{self.line}: {self.request[0]}'


def _blocks(text):
    """(line number, dedented content) of each ``code-block:: http``."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == '.. code-block:: http':
            start = i + 1
            j = start
            while j < len(lines) and (not lines[j].strip()
                                      or lines[j].startswith('   ')):
                j += 1
            body = textwrap.dedent('\n'.join(lines[start:j])).strip('\n')
            yield start + 1, body.split('\n')
            i = j
        else:
            i += 1


def _split(block):
    """(first line, headers, body text)."""
    blank = block.index('') if '' in block else len(block)
    headers = []
    for line in block[1:blank]:
        name, _, value = line.partition(':')
        headers.append((name.strip(), value.strip()))
    return block[0], headers, '\n'.join(block[blank + 1:]).strip()


def parse(text):
    examples, pending = [], None
    for line, block in _blocks(text):
        first = block[0]
        if first.startswith('HTTP/1.1 '):
            assert pending is not None, f'line {line}: response alone'
            examples.append(Example(pending[0], pending[1], _split(block)))
            pending = None
        else:
            assert pending is None, f'line {line}: request without response'
            assert re.match(r'^[A-Z]+ /\S* HTTP/1\.1$', first), (line, first)
            pending = (line, _split(block))
    assert pending is None, 'the last request has no response'
    return examples


def headings(text):
    """(method, path) of every route heading."""
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        match = HEADING.match(line)
        if match and set(lines[i + 1]) == {'-'}:
            found.append((match.group(1).lower(), match.group(2)))
    return found


class Replay:
    """Runs examples in order, keeping the values placeholders took."""

    def __init__(self, client, check, translate=False):
        self.client = client
        self.check = check
        self.translate = translate
        self.values = {}

    def substitute(self, text):
        def value(match):
            name = match.group(1)
            assert name in self.values, f'{{{{{name}}}}} used before set'
            return str(self.values[name])
        return PLACEHOLDER.sub(value, text)

    def key(self, key):
        found = PLACEHOLDER.fullmatch(key)
        if found and found.group(1) in self.values:
            return self.values[found.group(1)]
        return key

    def match(self, expected, actual, where):
        if isinstance(expected, str):
            found = PLACEHOLDER.fullmatch(expected)
            if found:
                name = found.group(1)
                if name == '*':
                    return
                if name not in self.values:
                    self.values[name] = actual
                expected = self.values[name]
        if isinstance(expected, dict):
            assert isinstance(actual, dict), where
            if self.translate and {'backup_id', 'backup_metadata'} <= set(
                    expected):
                expected = {**expected, 'user_name': USER}
            # a placeholder key (an id used as a key) stands for its value
            expected = {self.key(key): value
                        for key, value in expected.items()}
            extra_allowed = expected.get('...') == '...'
            keys = set(expected) - {'...'} if extra_allowed else set(expected)
            assert keys <= set(actual), (where, keys - set(actual))
            if not extra_allowed:
                assert set(actual) == keys, (where, set(actual) - keys)
            for key in keys:
                self.match(expected[key], actual[key], f'{where}.{key}')
        elif isinstance(expected, list):
            assert isinstance(actual, list), where
            assert len(expected) == len(actual), (where, actual)
            for n, (item, real) in enumerate(zip(expected, actual)):
                self.match(item, real, f'{where}[{n}]')
        else:
            assert expected == actual and type(expected) is type(actual), (
                where, expected, actual)

    def run(self, example):
        """Send one example; return the (template, method) it called."""
        first, headers, body = example.request
        method, target, _ = first.split(' ')
        target = self.substitute(target)
        if self.translate and target.startswith(V2_PREFIX + 'audit'):
            return None  # v2 only
        if self.translate and target.startswith(V2_PREFIX):
            target = '/v1/' + target[len(V2_PREFIX):]
        path, _, query = target.partition('?')
        sent = {'Host': HOST, **IDENTITY}
        sent.update((name, self.substitute(value)) for name, value in headers)
        body = self.substitute(body) if body else None
        status, expected_headers, expected_body = example.response
        template = self.check.template(path)
        called = None
        if method.lower() in self.check.doc['paths'][template]:
            called = (template, method.lower())
            # NOTE: the document must accept every request that works
            works = int(status.split()[1]) < 400
            resp = self.check.send(method, path, body=body, query=query,
                                   headers=sent, client=self.client,
                                   request_valid=works or None)
        else:
            # a method the route lacks (the 405 example)
            resp = self.client.simulate_request(
                method, path, query_string=query or None, headers=sent,
                body=body)
        where = f'{example!r} (v1 replay: {self.translate})'
        assert f'HTTP/1.1 {resp.status}' == status, (
            where, resp.status, resp.text)
        for name, value in expected_headers:
            assert name.lower() in resp.headers, (where, name)
            self.match(value, resp.headers[name.lower()], f'{where} {name}')
        if not expected_body:
            assert resp.content == b'', (where, resp.text)
        elif resp.headers.get('content-type', '').startswith(
                ('application/json', 'application/json-home')):
            self.match(json.loads(expected_body), resp.json, where)
        else:
            assert resp.text == expected_body, (where, resp.text)
        return called


@pytest.fixture(scope='module')
def reference():
    return REFERENCE.read_text()


def ordered_ids():
    """uuid4-like hex ids that sort in creation order."""
    count = iter(range(1, 1 << 32))
    return lambda: f'{next(count):08x}{uuid.uuid4().hex[8:]}'


@pytest.fixture
def replay_client(conf, storage, policy_enforcer):
    # NOTE: a still clock and ids in creation order make times and list
    # order in the examples exact.
    app = app_module.create_app(conf, storage, enforcer=policy_enforcer,
                                clock=Clock(), new_id=ordered_ids())
    return falcon.testing.TestClient(context.NoAuthMiddleware(app, conf))


def test_reference_parses_into_examples(reference):
    examples = parse(reference)
    assert len(examples) >= 40
    for example in examples:
        assert example.response[0].startswith('HTTP/1.1 ')


@pytest.mark.parametrize('translate', [False, True], ids=['v2', 'v1'])
def test_examples_match_the_service(reference, replay_client, translate):
    check = Conformance(openapi.document(), replay_client)
    replay = Replay(replay_client, check, translate)
    called = set()
    for example in parse(reference):
        called.add(replay.run(example))
    called.discard(None)
    version = 'v1' if translate else 'v2'
    documented = {(path, method) for path, item in check.doc['paths'].items()
                  for method in item if method in METHODS
                  if not path.startswith(('/v1/', '/v2/'))
                  or path.startswith(f'/{version}/')}
    assert sorted(documented - called) == []


def test_every_route_has_a_heading(reference):
    doc = openapi.document()
    documented = {(method, path) for path, item in doc['paths'].items()
                  for method in item if method in METHODS
                  if not path.startswith('/v1/')}
    found = headings(reference)
    assert len(found) == len(set(found)), 'a route has two headings'
    assert set(found) == documented
