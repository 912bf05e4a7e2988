"""The audit trail: what a change through the API records, and its chain.

Every transaction that writes documents on behalf of an API request also
appends, in the same transaction, one *audit record* per document written
(so a change and its record commit or vanish together). A record says

* when (``at``, microseconds since the epoch) and who (``user_id``,
  ``project_id`` of the caller's token, ``roles``);
* what: ``method`` and ``route`` (the URL template), ``kind``, ``doc_id``,
  ``action`` (``created``, ``updated`` or ``deleted``), the dotted names
  of the ``fields`` that changed (names only: values, secrets included,
  never reach the trail) and the document ``version`` after the change;
* ``request_id`` and ``result`` (``success``: a transaction that fails
  writes nothing, its record included).

Records are chained per project (the project of the documents written):
``seq`` counts from 1, ``prev_hash`` is the ``hash`` of record ``seq - 1``
(``GENESIS`` for the first) and ``hash`` is the SHA-256 of ``prev_hash``
and the canonical JSON of the record without its hash. Changing, removing
or inserting a record breaks the chain from that record on; ``verify``
finds where. The engine advances a per-project head conditionally, so two
writers can never append the same ``seq`` (see ``StorageDriver`` in
``freezer_api.storage.base``).

This module is pure: the API sets the request's ``Actor`` in a context
variable, ``AuditedStorage`` (the driver as the managers see it) records
the writes of each change and hands the entries to the engine.
"""

from collections.abc import Callable, Iterable, Iterator
import contextlib
import contextvars
import dataclasses
import datetime
import hashlib
import itertools
import json
import math
import os
import time
import typing
from typing import Any

import orjson

from freezer_api.core.errors import InvalidInput
from freezer_api.storage import base as storage_base
from freezer_api.storage import errors as storage_errors

GENESIS = storage_base.AUDIT_GENESIS
RESULT_SUCCESS = 'success'
ACTIONS = {'insert': 'created', 'update': 'updated', 'delete': 'deleted'}

# The fields of a record, in the order the API shows them.
FIELDS = ('id', 'project_id', 'seq', 'at', 'user_id', 'user_project_id',
          'roles', 'method', 'route', 'request_id', 'kind', 'doc_id',
          'action', 'fields', 'version', 'result', 'prev_hash', 'hash')

# At most this many changed field names are listed (a replaced document
# can change hundreds); ``fields_truncated`` then says so.
MAX_FIELDS = 100


class Actor(typing.NamedTuple):
    """Who makes the current request, and which route it is.

    PERF: a named tuple, made in 0.5 us (a frozen dataclass, 2.7 us:
    one per write request)."""

    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    method: str
    route: str
    request_id: str | None = None


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    'freezer_audit_actor', default=None)


@contextlib.contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """Record the writes made inside the block as ``actor``'s."""
    token = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(token)


def bind(actor: Actor) -> contextvars.Token:
    """Start recording writes as ``actor``'s; ``unbind`` the token."""
    return _current.set(actor)


def unbind(token: contextvars.Token) -> None:
    _current.reset(token)


def current_actor() -> Actor | None:
    return _current.get()


# -- the record -------------------------------------------------------------

def canonical(record: dict) -> bytes:
    """The bytes a record's hash covers: its JSON without ``hash``, keys
    sorted, no spaces, non-ASCII escaped (the same on every engine)."""
    if 'hash' in record:
        record = {k: v for k, v in record.items() if k != 'hash'}
    return _canonical_text(record).encode('ascii')


# one encoder, made once (json.dumps builds one per call)
_stdlib_canonical = json.JSONEncoder(
    sort_keys=True, separators=(',', ':'), ensure_ascii=True).encode

_ORJSON_SORTED = orjson.OPT_SORT_KEYS


def _canonical_text(record: dict) -> str:
    """The canonical JSON text of ``record`` (as ``_stdlib_canonical``).

    PERF: orjson writes a record in 1.5 us, json in 12 us (a write's
    audit cost was over budget). For ASCII without DEL, strings, integers,
    booleans, null, lists and objects, orjson's compact sorted text is
    json's byte for byte; anything else (non-ASCII, DEL, integers past 64
    bits) goes to json. Records carry no floats (see ``entry_for``), the
    one type the two write differently.
    """
    try:
        text = orjson.dumps(record, option=_ORJSON_SORTED)
    except orjson.JSONEncodeError:
        return _stdlib_canonical(record)
    if not text.isascii() or b'\x7f' in text:
        return _stdlib_canonical(record)
    return text.decode('ascii')


def record_hash(record: dict) -> str:
    digest = hashlib.sha256()
    digest.update(record['prev_hash'].encode('ascii'))
    digest.update(b'\n')
    digest.update(canonical(record))
    return digest.hexdigest()


class SealedRecord(dict):
    """A sealed record; ``text`` is its JSON, made while it was hashed
    (the canonical form plus ``hash``), which an engine may store as is
    rather than encode the record again."""

    __slots__ = ('text',)
    text: str


def seal(entries: list[dict], prev_seq: int, prev_hash: str) -> list[dict]:
    """Chain ``entries`` (records without seq/prev_hash/hash) after the
    head ``(prev_seq, prev_hash)``; return the sealed records
    (``SealedRecord``).

    Engines call this with the head they hold, inside the transaction.
    """
    sealed: list[dict] = []
    for number, entry in enumerate(entries, start=prev_seq + 1):
        record = SealedRecord(entry, seq=number, prev_hash=prev_hash)
        # PERF: the canonical JSON is made once, for the hash and the
        # stored text; the record has no hash yet, nothing to leave out.
        text = _canonical_text(record)
        record['hash'] = prev_hash = hashlib.sha256(
            f'{prev_hash}\n{text}'.encode('ascii')).hexdigest()
        # NOTE: the keys of the body are sorted and not empty: ``hash``
        # goes last, after a comma.
        record.text = f'{text[:-1]},"hash":"{prev_hash}"}}'
        sealed.append(record)
    return sealed


def changed_fields(old: Any, new: Any, prefix: str = '') -> list[str]:
    """Dotted names of the fields that differ between two documents
    (added, removed or changed); a list or scalar counts as one field."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [prefix[:-1] if prefix else '']
    # PERF: only the keys that differ are sorted and named (a PATCH
    # changes one or two of a job's fields): 9 us a write before.
    keys = [key for key in old if key not in new or old[key] != new[key]]
    keys += [key for key in new if key not in old]
    try:
        keys.sort()
    except TypeError:  # not all str: no document from JSON
        keys.sort(key=str)
    names: list[str] = []
    for key in keys:
        if key in old and key in new:
            before, after = old[key], new[key]
            if isinstance(before, dict) and isinstance(after, dict):
                names += changed_fields(before, after, f'{prefix}{key}.')
                continue
        names.append(f'{prefix}{key}')
    return names


# the version and variant bits of a random (version 4) UUID
_UUID4_KEEP = (1 << 128) - 1 ^ (0xF000 << 64) ^ (0xC000 << 48)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
# the count's part of an id: the low 64 bits but the variant's two
_COUNT_MASK = (1 << 62) - 1


class _RecordIds:
    """Record ids: 64 random bits drawn once per process, then a count.

    PERF: ``os.urandom`` per record was a system call inside the writers'
    turn, and one that lets go of the GIL there: another thread of the
    process took it and the turn waited for it back. Ids need to be
    unique, not unguessable (they grant nothing). The pid is checked on
    every id: a forked child (uwsgi, mod_wsgi) draws its own prefix.
    """

    def __init__(self):
        self._pid = None
        self._prefix = 0
        self._count = itertools.count()

    def __call__(self) -> str:
        pid = os.getpid()
        if pid != self._pid:
            self._prefix = int.from_bytes(os.urandom(8), 'big') << 64
            self._pid = pid
        # NOTE: next() on a count is atomic under the GIL; the variant
        # bits leave 62 bits of it.
        number = self._prefix | next(self._count) & _COUNT_MASK
        return f'{number & _UUID4_KEEP | _UUID4_SET:032x}'


new_record_id = _RecordIds()


def entry_for(actor: Actor, at: int, operation: str, kind: str,
              doc_id: str, project_id: str, version: int | None,
              old: dict | None, new: dict | None) -> dict:
    """The audit record (unsealed) of one document write."""
    fields = changed_fields(old or {}, new or {})
    entry = {
        'id': new_record_id(),
        'project_id': project_id,
        'at': at,
        'user_id': actor.user_id,
        'user_project_id': actor.project_id,
        'roles': sorted(actor.roles),
        'method': actor.method,
        'route': actor.route,
        'request_id': actor.request_id,
        'kind': kind,
        'doc_id': doc_id,
        'action': ACTIONS[operation],
        'fields': fields[:MAX_FIELDS],
        'version': version,
        'result': RESULT_SUCCESS,
    }
    if len(fields) > MAX_FIELDS:
        entry['fields_truncated'] = True
    return entry


# -- verification -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Verdict:
    """What ``verify`` found for one project's chain."""

    project_id: str
    checked: int
    first_seq: int | None = None     # the oldest record kept
    broken_seq: int | None = None    # the first record that does not match
    reason: str = ''

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(project_id: str, records: Iterable[dict],
           head: tuple[int, str] | None = None) -> Verdict:
    """Recompute the chain of ``records`` (one project's, by seq).

    The oldest record kept anchors the chain (older ones may have been
    purged after the retention period); each later one must follow its
    predecessor's hash and seq, and every hash must match its content.
    ``head``, the ``(seq, hash)`` the store's chain head holds, must be
    the last record's: records removed from the end are found too.
    """
    checked = 0
    first = None
    prev: dict | None = None
    for record in records:
        seq = record.get('seq')
        if first is None:
            first = seq
            if seq == 1 and record.get('prev_hash') != GENESIS:
                return Verdict(project_id, checked, first, seq,
                               'the first record does not start the chain')
        if record.get('project_id') != project_id:
            return Verdict(project_id, checked, first, seq,
                           'the record belongs to another project')
        if prev is not None:
            if seq != prev['seq'] + 1:
                return Verdict(project_id, checked, first, prev['seq'] + 1,
                               f'record {prev["seq"] + 1} is missing')
            if record.get('prev_hash') != prev['hash']:
                return Verdict(project_id, checked, first, seq,
                               'prev_hash is not the hash of the record '
                               'before')
        try:
            expected = record_hash(record)
        except (KeyError, TypeError, ValueError, AttributeError):
            return Verdict(project_id, checked, first, seq,
                           'the record is malformed')
        if record.get('hash') != expected:
            return Verdict(project_id, checked, first, seq,
                           'the hash does not match the content')
        checked += 1
        prev = record
    if head is not None:
        last = prev['seq'] if prev is not None else 0
        if head[0] > last:
            return Verdict(project_id, checked, first, last + 1,
                           f'record {last + 1} is missing (the chain head '
                           f'is at {head[0]})')
        if prev is not None and head != (prev['seq'], prev['hash']):
            return Verdict(project_id, checked, first, prev['seq'],
                           'the chain head does not name this record')
    return Verdict(project_id, checked, first)


# -- recording the writes of a change ---------------------------------------

class RecordingTransaction:
    """A transaction that notes each document written through it."""

    def __init__(self, txn, log: list):
        self._txn = txn
        self._log = log

    def __getattr__(self, name):
        return getattr(self._txn, name)

    def get(self, kind, doc_id, scope):
        return self._txn.get(kind, doc_id, scope)

    def insert(self, kind, doc_id, project_id, user_id, created_at, doc):
        record = self._txn.insert(kind, doc_id, project_id, user_id,
                                  created_at, doc)
        self._log.append(('insert', None, record))
        return record

    def update(self, record, doc):
        new = self._txn.update(record, doc)
        self._log.append(('update', record, new))
        return new

    def delete(self, record):
        self._txn.delete(record)
        self._log.append(('delete', record, None))


def entries_of(actor: Actor, at: int, log: list) -> dict[str, list[dict]]:
    """The unsealed records of the writes in ``log``, by project."""
    by_project: dict[str, list[dict]] = {}
    for operation, old, new in log:
        ref = new if new is not None else old
        entry = entry_for(
            actor, at, operation, ref.kind, ref.id, ref.project_id,
            new.version if new is not None else None,
            old.doc if old is not None else None,
            new.doc if new is not None else None)
        by_project.setdefault(ref.project_id, []).append(entry)
    return by_project


class AuditedStorage:
    """The storage driver as the managers use it: each change made while
    an ``Actor`` is acting is recorded in the same transaction.

    Everything else is the wrapped driver's. ``on_commit(records)`` is
    called with the sealed records after a change committed (the
    notifier's hook).
    """

    def __init__(self, driver, clock: Callable[[], float] = time.time,
                 on_commit: Callable[[list[dict]], None] | None = None):
        self._driver = driver
        self._clock = clock
        self._on_commit = on_commit

    def __getattr__(self, name):
        return getattr(self._driver, name)

    @property
    def driver(self):
        return self._driver

    def _audited(self, change):
        actor = _current.get()
        if actor is None:
            return change, None
        sealed: list[dict] = []

        def audited_change(txn):
            log: list = []
            sealed.clear()
            result = change(RecordingTransaction(txn, log))
            if log:
                at = int(self._clock() * 1_000_000)
                by_project = entries_of(actor, at, log)
                for project_id, entries in by_project.items():
                    sealed.extend(
                        txn.append_audit(project_id, entries, seal))
            return result

        return audited_change, sealed

    def _after(self, sealed):
        if sealed and self._on_commit is not None:
            self._on_commit(list(sealed))

    def atomic(self, change):
        change, sealed = self._audited(change)
        result = self._driver.atomic(change)
        self._after(sealed)
        return result

    def create(self, kind, doc_id, project_id, user_id, created_at, doc):
        if _current.get() is None:
            return self._driver.create(kind, doc_id, project_id, user_id,
                                       created_at, doc)
        # NOTE: through atomic, the driver's one entry for changes (a
        # taken id is tried once more there, and found taken again).
        with self._driver.preparing(doc):
            return self.atomic(
                lambda txn: txn.insert(kind, doc_id, project_id, user_id,
                                       created_at, doc))

    def delete(self, kind, doc_id, scope):
        if _current.get() is None:
            return self._driver.delete(kind, doc_id, scope)

        def change(txn):
            record = txn.get(kind, doc_id, scope)
            if record is None:
                raise storage_errors.NotFound(f'{kind} {doc_id!r} not found')
            txn.delete(record)

        self.atomic(change)


# -- reading the trail ------------------------------------------------------

def parse_time(text: str | None, name: str) -> int | None:
    """``since``/``until``: seconds since the epoch (a number) or an ISO
    8601 time (UTC unless it says otherwise); microseconds, or None."""
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip() or len(text) > 64:
        raise InvalidInput(f'{name} must be a time')
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.datetime.fromisoformat(
                text[:-1] + '+00:00' if text.endswith(('Z', 'z')) else text)
        except ValueError:
            raise InvalidInput(
                f'{name} must be seconds since the epoch or an ISO 8601 '
                'time (e.g. 2026-01-31T12:00:00Z)') from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        seconds = moment.timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds < 2 ** 40:
        raise InvalidInput(f'{name} is out of range')
    return int(seconds * 1_000_000)


def shown(record: dict) -> dict:
    """A stored record as the API shows it: its fields in a stable order,
    plus ``time``, ``at`` in ISO 8601 (UTC)."""
    result = {name: record.get(name) for name in FIELDS}
    if record.get('fields_truncated'):
        result['fields_truncated'] = True
    at = record.get('at')
    if isinstance(at, int):
        result['time'] = datetime.datetime.fromtimestamp(
            at / 1_000_000, datetime.timezone.utc).isoformat(
            timespec='microseconds').replace('+00:00', 'Z')
    return result


# Pages end this deep on every store (Elasticsearch's result window):
# further records are reached with ``since``.
MAX_DEPTH = 10_000


class AuditReader:
    """The audit trail as project administrators read it."""

    def __init__(self, storage):
        self.storage = storage

    def list(self, project_id: str | None, since: int | None,
             until: int | None, limit: int, offset: int) -> list[dict]:
        if since is not None and until is not None and until < since:
            raise InvalidInput('until must not be before since')
        if offset + limit > MAX_DEPTH:
            raise InvalidInput(
                f'offset + limit must be at most {MAX_DEPTH}: page further '
                'with since (the time of the last record read)')
        return [shown(record) for record in self.storage.list_audit(
            project_id, since, until, limit, offset)]
