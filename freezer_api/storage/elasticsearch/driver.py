"""Storage driver on Elasticsearch 8.

Layout (see ``mappings``)
    One index, reached through the alias named by ``[elasticsearch] index``
    (writes require the alias, so a missing index is an error, never an
    index auto-created with a dynamic mapping). The Elasticsearch ``_id``
    is derived from the kind and the id (and the project, for clients, whose
    ids are unique per project only), so uniqueness is the engine's own.
    Searches run on the ``keys``/``paths``/``nums``/``text`` fields, the
    same inverted index the SQL driver keeps in its term tables.

Read-your-writes
    Gets by id are real-time. Lists and searches see a write once its shard
    is refreshed: with ``[elasticsearch] refresh = true`` (the default) a
    write request refreshes before it returns.

Atomicity
    Elasticsearch has no multi-document transactions. ``atomic`` runs the
    change against a private overlay: reads go to the engine (real-time
    get, remembering each document's ``_seq_no``/``_primary_term``), writes
    stay in memory and the change sees them. When the change returns, the
    writes are applied: first the updates and deletes of documents that
    existed, in ``_id`` order, each conditional on the sequence number that
    was read, then the new documents in one bulk request of ``create``
    operations (which fail when the id is taken). A write that finds the
    document changed (409) undoes the writes already applied, conditionally
    on their own sequence numbers, and the change runs again after a short
    random pause, up to ``conflict_retries`` times.

    So a change that writes one document (most of them) is atomic. A change
    that writes several is atomic against every other writer that goes
    through this driver as long as the process lives: writers of a shared
    document are ordered by its conditional write, and the loser undoes
    its partial writes. What it cannot give: readers may see the first
    writes of a multi-document change before the last ones are applied (a
    few milliseconds).

Journal
    A change that writes several documents first stores an *intent*
    document (kind ``_intent``, never listed) holding, for each write, the
    document before and after, and each document it writes carries the
    intent's key (field ``txn``, the *stamp*). Deleting the intent,
    conditionally on the sequence number its writer got, is the commit
    point: the change is acknowledged only once the delete succeeded after
    its last write. A failed change that undid all its writes deletes its
    intent too. An intent left behind is rolled back by
    ``recover_interrupted`` once its owner can no longer write: this
    process when the change is over, a process of this host that is gone,
    or any process when the intent is older than ``_INTENT_GRACE``
    seconds (a change gives up, unacknowledged, after ``_LEASE``). Every
    process sweeps at its first write and then at most every
    ``_SWEEP_INTERVAL`` seconds. A sweep claims the intent with a
    conditional write (a writer that then cannot delete it undoes its
    change and answers 503), and gives each document that still carries
    the stamp its earlier content, conditionally on the sequence number it
    read: a document written since (its stamp replaced) keeps the newer
    write. What remains: until the sweep runs, readers can see the first
    writes of the interrupted change, and a writer may build on them (it
    then keeps them). Every write is logged at debug level.
"""

import contextlib
import copy
import dataclasses
import hashlib
import logging
import os
import socket
import threading
import time
import urllib.parse

import elastic_transport
import elasticsearch

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.elasticsearch import audit
from freezer_api.storage.elasticsearch import mappings

__all__ = ['ElasticsearchDriver']

LOG = logging.getLogger(__name__)

_UNAVAILABLE = 'the search cluster is unavailable'
_NO_INDEX = ('the index does not exist; create it with '
             '"freezer-manage db sync"')


# Elasticsearch's default index.max_result_window: deeper pages are read
# with search_after.
_RESULT_WINDOW = 10_000
_BULK_CHUNK = 500
_MAX_ID_BYTES = 512

# The journal of multi-document changes (see "Journal" above).
_INTENT = '_intent'
_SWEEP_INTERVAL = 10.0    # seconds between two looks for interrupted changes
_INTENT_GRACE = 120.0     # seconds after which any intent counts as abandoned
# A change stops writing (and fails) this long after it stored its intent,
# so that a sweep that takes the intent after _INTENT_GRACE never races
# with it (the margin covers clocks of hosts that disagree).
_LEASE = _INTENT_GRACE / 2
# The field of a document written by a multi-document change: the key of
# that change's intent.
_STAMP = 'txn'
_BOOT_TOKEN = os.urandom(8).hex()
_HOSTNAME = socket.gethostname()


def _process_token():
    # NOTE: with the pid, so that processes forked after import (uwsgi
    # workers) each have their own.
    return f'{_BOOT_TOKEN}-{os.getpid()}'


class _Journal:
    """The intent of one multi-document change of this process."""

    __slots__ = ('key', 'seq', 'started')

    def __init__(self, key):
        self.key = key
        self.seq = None
        self.started = time.monotonic()

    def check_lease(self):
        if time.monotonic() - self.started > _LEASE:
            LOG.error('A change took longer than %d s; giving it up',
                      _LEASE)
            raise errors.Unavailable(_UNAVAILABLE)


# Re-runs of changes that lost a race take turns within a process, so that
# contention from threads of one process does not starve them; processes
# still race optimistically.
_CONTENDED = threading.RLock()


def _check_kind(kind):
    if kind not in base.KINDS:
        raise ValueError(f'unknown kind of document: {kind!r}')


def doc_key(kind, project_id, doc_id):
    """The Elasticsearch ``_id`` of a document."""
    parts = [kind]
    if kind in base.PROJECT_UNIQUE_KINDS:
        parts.append(project_id)
    parts.append(doc_id)
    key = '/'.join(urllib.parse.quote(p, safe='') for p in parts)
    if len(key.encode('utf-8')) > _MAX_ID_BYTES:
        key = f'{kind}/#{hashlib.sha256(key.encode("utf-8")).hexdigest()}'
    return key


def _record(src):
    return base.Record(kind=src['kind'], id=src['id'],
                       project_id=src['project_id'], user_id=src['user_id'],
                       version=src['version'], created_at=src['created_at'],
                       doc=src['doc'])


def _source(record, stamp=None):
    """The stored form of ``record``; ``stamp``: the journal entry of the
    multi-document change that writes it (see "Journal")."""
    if record.kind == audit.AUDIT_KIND:  # audit trail: see audit.py
        return audit.audit_source(record, audit.audit_key(
            record.project_id, record.doc['seq']), stamp)
    key = doc_key(record.kind, record.project_id, record.id)
    src = {'kind': record.kind, 'key': key, 'id': record.id,
           'project_id': record.project_id, 'user_id': record.user_id,
           'version': record.version, 'created_at': record.created_at,
           'doc': record.doc}
    if stamp is not None:
        src[_STAMP] = stamp
    src.update(mappings.search_fields(record.doc))
    src[record.kind] = mappings.typed_fields(record.kind, record.doc)
    return src


def _error_type(exc):
    body = getattr(exc, 'body', None)
    if isinstance(body, dict):
        error = body.get('error')
        if isinstance(error, dict):
            return error.get('type')
    return None


def _status(exc):
    meta = getattr(exc, 'meta', None)
    return getattr(meta, 'status', None)


def _is_version_conflict(exc):
    return _status(exc) == 409


def _translate(what, exc):
    """Return the storage error for a client exception (logged here)."""
    # NOTE: client errors name hosts, ports and server messages: they go
    # to the log only, never into the message.
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        LOG.error('Elasticsearch error while %s: the server is not a '
                  'supported Elasticsearch: %s', what, exc)
        return errors.Unavailable(_UNAVAILABLE)
    if isinstance(exc, elasticsearch.ApiError):
        status = _status(exc)
        kind = _error_type(exc)
        if kind == 'index_not_found_exception':
            LOG.error('Elasticsearch index missing while %s: %s', what, exc)
            return errors.Unavailable(_NO_INDEX)
        if status is not None and (status >= 500 or status in (408, 429)):
            LOG.warning('Elasticsearch failed while %s: %s', what, exc)
            return errors.Unavailable(_UNAVAILABLE)
        LOG.error('Elasticsearch refused a request while %s: %s', what, exc)
        return errors.StorageError('the search cluster refused a request')
    if isinstance(exc, (elastic_transport.TransportError,
                        elasticsearch.TransportError)):
        LOG.warning('Elasticsearch unreachable while %s: %s', what, exc)
        return errors.Unavailable(_UNAVAILABLE)
    LOG.error('Unexpected Elasticsearch client error while %s: %s', what,
              exc)
    return errors.Unavailable(_UNAVAILABLE)


_CLIENT_ERRORS = (elasticsearch.ApiError, elasticsearch.TransportError,
                  elastic_transport.TransportError,
                  elasticsearch.UnsupportedProductError)


@contextlib.contextmanager
def _guard(what):
    try:
        yield
    except _CLIENT_ERRORS as exc:
        raise _translate(what, exc) from None


class _Entry:
    """What a transaction knows of one document."""

    __slots__ = ('seq', 'original', 'current', 'stamp')

    def __init__(self, seq, original, stamp=None):
        # (_seq_no, _primary_term) of the stored document, None if absent.
        self.seq = seq
        self.original = original   # the stored Record, or None
        self.current = original    # as the transaction sees it now
        self.stamp = stamp         # the stored document's journal stamp

    @property
    def changed(self):
        return self.current is not self.original


class _Transaction(audit.TransactionAudit, base.Transaction):
    """One attempt of an ``atomic`` change: reads hit the engine, writes
    wait in ``_entries`` until ``_commit``."""

    def __init__(self, driver):
        self._driver = driver
        self._entries = {}

    def _check(self):
        if self.doomed is not None:
            raise self.doomed

    def _load(self, kind, project_id, doc_id):
        key = doc_key(kind, project_id, doc_id)
        entry = self._entries.get(key)
        if entry is None:
            hit = self._driver._get_raw(key)
            if hit is None:
                entry = _Entry(None, None)
            else:
                entry = _Entry((hit['_seq_no'], hit['_primary_term']),
                               _record(hit['_source']),
                               hit['_source'].get(_STAMP))
            self._entries[key] = entry
        return key, entry

    def get(self, kind, doc_id, scope):
        _check_kind(kind)
        self._check()
        if kind in base.PROJECT_UNIQUE_KINDS and scope.project_id is None:
            return self._find_any_project(kind, doc_id, scope)
        project = scope.project_id
        _, entry = self._load(kind, project, doc_id)
        record = entry.current
        if record is None or not scope.contains(record.project_id,
                                                record.user_id):
            return None
        return record

    def _find_any_project(self, kind, doc_id, scope):
        with _guard('reading a document'):
            hits = self._driver._search_hits(
                kind, scope, [{'term': {'id': doc_id}}], size=100,
                seq_no=True)
        for hit in hits:
            key = hit['_id']
            if key not in self._entries:
                self._entries[key] = _Entry(
                    (hit['_seq_no'], hit['_primary_term']),
                    _record(hit['_source']), hit['_source'].get(_STAMP))
        candidates = [
            (entry.current.created_at, key, entry.current)
            for key, entry in self._entries.items()
            if entry.current is not None and entry.current.kind == kind
            and entry.current.id == doc_id
            and scope.contains(entry.current.project_id,
                               entry.current.user_id)]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c[0], c[1]))[2]

    def insert(self, kind, doc_id, project_id, user_id, created_at, doc):
        _check_kind(kind)
        self._check()
        key = doc_key(kind, project_id, doc_id)
        entry = self._entries.get(key)
        if entry is None:
            if self._driver._exists(key):
                raise base.IdTaken(f'{kind} {doc_id!r} already exists')
            entry = self._entries[key] = _Entry(None, None)
        elif entry.current is not None:
            raise base.IdTaken(f'{kind} {doc_id!r} already exists')
        record = base.Record(kind=kind, id=doc_id, project_id=project_id,
                             user_id=user_id, version=1,
                             created_at=created_at, doc=copy.deepcopy(doc))
        entry.current = record
        return record

    def _current(self, record):
        _check_kind(record.kind)
        self._check()
        _, entry = self._load(record.kind, record.project_id, record.id)
        current = entry.current
        if current is None or current.version != record.version:
            raise self.lost_race()
        return entry

    def update(self, record, doc):
        entry = self._current(record)
        updated = dataclasses.replace(entry.current,
                                      version=entry.current.version + 1,
                                      doc=copy.deepcopy(doc))
        entry.current = updated
        return updated

    def delete(self, record):
        entry = self._current(record)
        entry.current = None

    def writes(self):
        """(conditional writes in _id order, creates)."""
        conditional, creates = [], []
        for key in sorted(self._entries):
            entry = self._entries[key]
            if not entry.changed:
                continue
            if entry.seq is None:
                if entry.current is not None:
                    creates.append((key, entry))
            else:
                conditional.append((key, entry))
        return conditional, creates


class ElasticsearchDriver(audit.DriverAudit, base.StorageDriver):
    """Documents in an Elasticsearch 8 index."""

    backoff_base = 0.01
    backoff_cap = 0.25

    def __init__(self, conf):
        super().__init__(conf)
        opts = conf.elasticsearch
        self._index = opts.index
        self._concrete = f'{opts.index}-v{mappings.SCHEMA_VERSION}'
        self.max_attempts = opts.conflict_retries
        self._refresh = opts.refresh
        self._timeout = opts.timeout
        self._query_timeout = opts.query_timeout
        self._client_lock = threading.Lock()
        self._client = None
        self._pid = None
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()
        # intents of changes under way here: key -> (seq_no, term)
        self._in_flight = {}
        # NOTE: the client logs every request at INFO and each retry as a
        # warning with a traceback; this driver logs one line per failure
        # itself. Keep theirs for debugging, unless the operator set a
        # level for it ([DEFAULT] default_log_levels).
        transport_log = logging.getLogger('elastic_transport.transport')
        if transport_log.level == logging.NOTSET:
            transport_log.setLevel(logging.ERROR)

    # -- client ------------------------------------------------------------

    def _client_options(self):
        opts = self.conf.elasticsearch
        scheme = 'https' if opts.use_ssl else 'http'
        hosts = []
        for host in opts.hosts:
            host = host.strip()
            if not host:
                continue
            if '://' not in host:
                host = f'{scheme}://{host}'
            hosts.append(host)
        if not hosts:
            LOG.error('[elasticsearch] hosts is empty')
            raise errors.Unavailable(
                'the [elasticsearch] hosts option is not usable')
        kwargs = {
            'hosts': hosts,
            'request_timeout': opts.timeout,
            'max_retries': opts.retries,
            'retry_on_timeout': False,
            'connections_per_node': opts.connections_per_node,
            'verify_certs': opts.verify_certs,
        }
        if opts.ca_certs:
            kwargs['ca_certs'] = opts.ca_certs
        if opts.http_auth:
            user, _, password = opts.http_auth.partition(':')
            kwargs['basic_auth'] = (user, password)
        return kwargs

    @property
    def client(self):
        """The Elasticsearch client of this process."""
        pid = os.getpid()
        if self._client is None or self._pid != pid:
            with self._client_lock:
                if self._client is None or self._pid != pid:
                    # NOTE: connections inherited through fork() are shared
                    # with the parent: never reuse them.
                    try:
                        self._client = elasticsearch.Elasticsearch(
                            **self._client_options())
                    except (ValueError, TypeError) as exc:
                        LOG.error('Cannot use the [elasticsearch] options: '
                                  '%s', exc)
                        raise errors.Unavailable(
                            'the [elasticsearch] options are not usable'
                        ) from None
                    self._pid = pid
        return self._client

    @property
    def writer(self):
        """The client for writes: it never sends a request twice.

        NOTE: a write whose connection broke may have been applied; sent
        again, it would fail as a lost race (conditional writes) or a taken
        id (creates), and the change would be applied twice or refused. A
        pooled connection the server closed is replaced before use, so
        this costs nothing in normal operation.
        """
        return self.client.options(max_retries=0)

    # -- low-level reads ---------------------------------------------------

    def _get_raw(self, key):
        """Real-time get of one stored document; None when absent."""
        with _guard('reading a document'):
            try:
                return self.client.get(index=self._index, id=key,
                                       realtime=True)
            except elasticsearch.NotFoundError as exc:
                if _error_type(exc) is None:
                    return None  # {"found": false}
                raise

    def _exists(self, key):
        with _guard('reading a document'):
            exists = self.client.exists(index=self._index, id=key,
                                        realtime=True)
        if exists.meta.status == 404:
            # HEAD answers carry no body: tell a missing document from a
            # missing index.
            with _guard('reading a document'):
                if not self.client.indices.exists(index=self._index):
                    raise errors.Unavailable(_NO_INDEX)
        return bool(exists)

    def _filters(self, kind, scope):
        filters = [{'term': {'kind': kind}}]
        if scope.project_id is not None:
            filters.append({'term': {'project_id': scope.project_id}})
        if scope.user_id is not None:
            filters.append({'term': {'user_id': scope.user_id}})
        return filters

    _SORT = [{'created_at': 'asc'}, {'id': 'asc'}, {'key': 'asc'}]

    def _search(self, **kwargs):
        """One search of the index, stopped at ``query_timeout``.

        Elasticsearch answers a search that ran out of time with the hits
        found so far and ``timed_out``: a partial page that clients would
        take for the end of the list, so it is an error instead.
        """
        if self._query_timeout:
            kwargs['timeout'] = (
                f'{max(1, round(self._query_timeout * 1_000_000))}micros')
            if 'filter_path' in kwargs:
                kwargs['filter_path'] += ',timed_out'
        response = self.client.search(index=self._index, **kwargs)
        if response.get('timed_out'):
            LOG.warning('An Elasticsearch search ran past [elasticsearch] '
                        'query_timeout')
            raise errors.QueryTimeout(
                'the search ran longer than the store allows '
                '([elasticsearch] query_timeout)')
        return response

    def _search_hits(self, kind, scope, extra, size, seq_no=False):
        response = self._search(
            query={'bool': {'filter': self._filters(kind, scope) + extra}},
            sort=self._SORT, size=size, seq_no_primary_term=seq_no,
            track_total_hits=False)
        return response['hits']['hits']

    @staticmethod
    def _query(query):
        filters, must_not = [], []

        def term(t):
            field = 'paths' if t.is_path else 'keys'
            return {'term': {field: mappings.term_form(t.field, t.value)}}

        for t in query.match:
            filters.append(term(t))
        for t in query.match_not:
            must_not.append(term(t))
        for needle in query.text:
            needle = needle.lower()
            if needle:
                filters.append({'match_phrase': {'text': {
                    'query': mappings.text_tokens(needle), 'slop': 0}}})
            else:
                # '' is in every value: any document with a leaf.
                filters.append({'exists': {'field': 'keys'}})
        for rng in query.ranges:
            low, high = mappings.number_bounds(rng.path, rng.low, rng.high)
            filters.append({'range': {'nums': {'gte': low, 'lte': high}}})
        return filters, must_not

    # -- documents ---------------------------------------------------------

    def get(self, kind, doc_id, scope):
        _check_kind(kind)
        if kind in base.PROJECT_UNIQUE_KINDS and scope.project_id is None:
            with _guard('reading a document'):
                hits = self._search_hits(kind, scope,
                                         [{'term': {'id': doc_id}}], size=1)
            if not hits:
                raise errors.NotFound(f'{kind} {doc_id!r} not found')
            return _record(hits[0]['_source'])
        hit = self._get_raw(doc_key(kind, scope.project_id, doc_id))
        if hit is not None:
            record = _record(hit['_source'])
            if scope.contains(record.project_id, record.user_id):
                return record
        raise errors.NotFound(f'{kind} {doc_id!r} not found')

    def list(self, kind, scope, query, limit, offset):
        _check_kind(kind)
        limit = max(0, min(int(limit), base.MAX_LIST_LIMIT))
        offset = max(0, int(offset))
        if limit == 0:
            return []
        filters, must_not = self._query(query)
        body_query = {'bool': {'filter': self._filters(kind, scope)
                               + filters}}
        if must_not:
            body_query['bool']['must_not'] = must_not
        with _guard('listing documents'):
            if offset + limit <= _RESULT_WINDOW:
                response = self._search(
                    query=body_query, sort=self._SORT,
                    from_=offset, size=limit, track_total_hits=False)
                hits = response['hits']['hits']
            else:
                hits = self._deep_page(body_query, limit, offset)
        return [_record(hit['_source']) for hit in hits]

    def _deep_page(self, body_query, limit, offset):
        """A page past the result window: walk there with search_after."""
        total = self.client.count(index=self._index,
                                  query=body_query)['count']
        if offset >= total:
            return []
        after = None
        remaining = offset
        while remaining > 0:
            size = min(remaining, _RESULT_WINDOW)
            kwargs: dict = ({'search_after': after} if after is not None
                            else {})
            response = self._search(
                query=body_query, sort=self._SORT,
                size=size, source=False, track_total_hits=False,
                filter_path='hits.hits.sort', **kwargs)
            hits = response.get('hits', {}).get('hits', [])
            if len(hits) < size:
                return []
            remaining -= len(hits)
            after = hits[-1]['sort']
        response = self._search(
            query=body_query, sort=self._SORT,
            size=limit, search_after=after, track_total_hits=False)
        return response['hits']['hits']

    def create(self, kind, doc_id, project_id, user_id, created_at, doc):
        _check_kind(kind)
        record = base.Record(kind=kind, id=doc_id, project_id=project_id,
                             user_id=user_id, version=1,
                             created_at=created_at, doc=copy.deepcopy(doc))
        key = doc_key(kind, project_id, doc_id)
        with _guard('creating a document'):
            try:
                self.writer.create(index=self._index, id=key,
                                   document=_source(record),
                                   refresh=self._refresh,
                                   require_alias=True)
            except elasticsearch.ConflictError:
                raise base.IdTaken(f'{kind} {doc_id!r} already exists') \
                    from None
        return record

    def atomic(self, change):
        self._maybe_recover()
        return super().atomic(change)

    def attempt(self, change, attempt):
        if attempt.contended:
            with _CONTENDED:
                return self._attempt(change)
        return self._attempt(change)

    def _attempt(self, change):
        txn = _Transaction(self)
        # NOTE: writes wait in the transaction until the commit: nothing to
        # roll back.
        result = txn.run(change, abort=lambda: None)
        self._commit(txn)
        return result

    # -- commit --------------------------------------------------------------

    def _commit(self, txn):
        conditional, creates = txn.writes()
        count = len(conditional) + len(creates)
        if count == 0:
            return
        # One write: let it refresh its own shard. Several: refresh once at
        # the end (or wait on each, with refresh = wait_for).
        if count == 1 or self._refresh == 'wait_for':
            refresh = self._refresh
        else:
            refresh = 'false'
        journal = None
        if count > 1:
            journal = self._open_intent(conditional + creates)
        stamp = journal and journal.key
        applied = []  # (key, entry, new seq) of writes done, for undo
        try:
            with _guard('writing documents'):
                for key, entry in conditional:
                    if journal is not None:
                        journal.check_lease()
                    applied.append(self._conditional_write(key, entry,
                                                           refresh, stamp))
                if creates:
                    if journal is not None:
                        journal.check_lease()
                    self._create_all(creates, refresh, applied, stamp)
                if refresh == 'false' and count > 1 and (
                        self._refresh == 'true'):
                    self.client.indices.refresh(index=self._index)
        except (base.LostRace, base.IdTaken):
            # Every write not in ``applied`` was refused: undoing the
            # others restores the documents, and the intent can go.
            self._close_intent(journal, self._undo(applied))
            raise
        except errors.StorageError:
            if applied:
                LOG.error('Writing a change failed after %d of its %d '
                          'writes; undoing them', len(applied), count)
                self._undo(applied)
            # NOTE: the write that failed may have been applied all the
            # same (a timeout, a connection cut after sending): the intent
            # stays, and the sweep rolls back whatever still carries its
            # stamp.
            self._close_intent(journal, False)
            raise
        self._finish_intent(journal, applied)

    # -- the journal -------------------------------------------------------

    def _open_intent(self, writes):
        """Store what a multi-document change is about to write."""
        intent_id = os.urandom(16).hex()
        key = f'{_INTENT}/{intent_id}'

        def image(record):
            return None if record is None else dataclasses.asdict(record)

        doc = {'host': _HOSTNAME, 'pid': os.getpid(),
               'token': _process_token(), 'time': time.time(),
               'writes': [{'key': k, 'before': image(e.original),
                           'before_stamp': e.stamp,
                           'after': image(e.current)} for k, e in writes]}
        journal = _Journal(key)
        self._in_flight[key] = journal
        try:
            with _guard('writing documents'):
                response = self.writer.create(
                    index=self._index, id=key, refresh='false',
                    require_alias=True,
                    document={'kind': _INTENT, 'key': key, 'id': intent_id,
                              'project_id': '', 'user_id': '', 'version': 1,
                              'created_at': int(time.time() * 1e6),
                              'doc': doc})
        except BaseException:
            self._in_flight.pop(key, None)
            raise
        journal.seq = (response['_seq_no'], response['_primary_term'])
        return journal

    def _close_intent(self, journal, undone):
        """Drop the intent of a change that failed, if its writes were all
        undone; otherwise leave it to the sweep (``recover_interrupted``).
        """
        if journal is None:
            return
        try:
            if undone:
                self._delete_intent(journal)
        except _CLIENT_ERRORS as exc:
            # harmless: nothing carries its stamp any more
            LOG.warning('Could not drop the journal entry %s: %s',
                        journal.key, exc)
        finally:
            # only now may a sweep of this process take it (when left)
            self._in_flight.pop(journal.key, None)

    def _finish_intent(self, journal, applied):
        """Acknowledge a change whose writes were all applied: deleting its
        intent (conditionally on the sequence number this process gave it)
        is the point after which no sweep can roll the change back.
        """
        if journal is None:
            return
        try:
            self._delete_intent(journal)
        except (elasticsearch.ConflictError, elasticsearch.NotFoundError):
            # A sweep claimed it (this change outlived its lease): the
            # change is being rolled back. Take back what is still ours,
            # and do not acknowledge it.
            LOG.error('The journal entry %s of a change was claimed by a '
                      'sweep; undoing the change', journal.key)
            self._undo(applied)
            raise errors.Unavailable(_UNAVAILABLE) from None
        except _CLIENT_ERRORS as exc:
            # Deleted or not: not acknowledged. If it is still there, the
            # sweep rolls the change back.
            LOG.error('Could not drop the journal entry %s: %s',
                      journal.key, exc)
            raise errors.Unavailable(_UNAVAILABLE) from None
        finally:
            self._in_flight.pop(journal.key, None)

    def _delete_intent(self, journal):
        seq_no, term = journal.seq
        self.writer.delete(index=self._index, id=journal.key,
                           refresh='false', if_seq_no=seq_no,
                           if_primary_term=term)

    def _maybe_recover(self):
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(
                blocking=False):
            return
        try:
            self._next_sweep = now + _SWEEP_INTERVAL
            self.recover_interrupted()
        except errors.StorageError as exc:
            LOG.warning('Could not look for interrupted changes: %s', exc)
        finally:
            self._sweep_lock.release()

    def _abandoned(self, key, intent, now):
        """Whether the owner of an intent can no longer write: this process
        when the change is over, a process of this host that is gone, or
        any process once the intent is older than ``_INTENT_GRACE`` (its
        owner stops writing after ``_LEASE``)."""
        # a claimed intent belongs to the process rolling it back
        intent = intent.get('claimed') or intent
        if intent.get('token') == _process_token():
            return key not in self._in_flight
        if now - intent.get('time', 0) > _INTENT_GRACE:
            return True
        if intent.get('host') != _HOSTNAME:
            return False
        try:
            os.kill(int(intent.get('pid')), 0)
        except ProcessLookupError:
            return True
        except (OSError, TypeError, ValueError):
            return False
        return False

    def recover_interrupted(self, everything=False):
        """Roll back the changes of processes that died mid-change.

        ``everything`` also takes intents of live processes (for
        ``freezer-manage`` and tests, when no API process runs). Returns
        the number of intents handled.
        """
        with _guard('recovering interrupted changes'):
            # NOTE: intents are written without a refresh; make them
            # searchable first (a sweep runs at most every few seconds).
            self.client.indices.refresh(index=self._index)
            response = self.client.search(
                index=self._index, query={'term': {'kind': _INTENT}},
                size=100, seq_no_primary_term=True, track_total_hits=False)
        handled = 0
        now = time.time()
        for hit in response['hits']['hits']:
            intent = hit['_source']['doc']
            if not everything and not self._abandoned(hit['_id'], intent,
                                                      now):
                continue
            with _guard('recovering interrupted changes'):
                # Claim it first, conditionally: whoever else holds it
                # (its writer finishing, another sweep) wins.
                source = dict(hit['_source'], doc=dict(intent, claimed={
                    'host': _HOSTNAME, 'pid': os.getpid(),
                    'token': _process_token(), 'time': time.time()}))
                try:
                    claimed = self.writer.index(
                        index=self._index, id=hit['_id'], document=source,
                        if_seq_no=hit['_seq_no'],
                        if_primary_term=hit['_primary_term'],
                        refresh='false', require_alias=True)
                except (elasticsearch.NotFoundError,
                        elasticsearch.ConflictError):
                    continue  # finished, or taken, meanwhile
                LOG.warning('Rolling back a change interrupted in process '
                            '%s on %s', intent.get('pid'),
                            intent.get('host'))
                for write in reversed(intent.get('writes', [])):
                    self._roll_back(hit['_id'], write)
                try:
                    self.writer.delete(
                        index=self._index, id=hit['_id'],
                        if_seq_no=claimed['_seq_no'],
                        if_primary_term=claimed['_primary_term'],
                        refresh=self._refresh)
                except (elasticsearch.NotFoundError,
                        elasticsearch.ConflictError):
                    pass
            handled += 1
        return handled

    def _roll_back(self, intent_key, write):
        """Give one document its content from before the change, if it
        still holds what the change wrote.

        NOTE: "still holds" is decided by the stamp alone, never by the
        content: versions are not unique (an undo or a roll-back puts an
        earlier version back, and a change run again can then write the
        same version with the same content, acknowledged this time). A
        document the change wrote carries the intent's key; any later
        write replaces it. The roll-back is conditional on the sequence
        number read, so a write that comes in between is never lost.
        """
        key = write['key']
        before = write['before'] and base.Record(**write['before'])
        before_stamp = write.get('before_stamp')
        hit = self._get_raw(key)
        try:
            if write['after'] is None:
                # NOTE: a deleted document carries no stamp; absent, it is
                # what this change deleted (ids are not reused).
                if hit is None and before is not None:
                    self.writer.create(
                        index=self._index, id=key,
                        document=_source(before, before_stamp),
                        refresh=self._refresh, require_alias=True)
                    LOG.info('Rolled back the deletion of %s', key)
                return
            if hit is None or hit['_source'].get(_STAMP) != intent_key:
                return  # never written, or written again since
            if before is None:
                self.writer.delete(index=self._index, id=key,
                                   if_seq_no=hit['_seq_no'],
                                   if_primary_term=hit['_primary_term'],
                                   refresh=self._refresh)
            else:
                self.writer.index(index=self._index, id=key,
                                  document=_source(before, before_stamp),
                                  if_seq_no=hit['_seq_no'],
                                  if_primary_term=hit['_primary_term'],
                                  refresh=self._refresh, require_alias=True)
            LOG.info('Rolled back %s', key)
        except elasticsearch.ConflictError:
            LOG.info('Did not roll back %s: written again meanwhile', key)

    def _conditional_write(self, key, entry, refresh, stamp=None):
        seq_no, term = entry.seq
        try:
            if entry.current is None:
                response = self.writer.delete(
                    index=self._index, id=key, if_seq_no=seq_no,
                    if_primary_term=term, refresh=refresh)
            else:
                response = self.writer.index(
                    index=self._index, id=key,
                    document=_source(entry.current, stamp), if_seq_no=seq_no,
                    if_primary_term=term, refresh=refresh,
                    require_alias=True)
        except elasticsearch.ApiError as exc:
            if _is_version_conflict(exc) or (
                    entry.current is None and _status(exc) == 404):
                LOG.debug('Change lost a race on %s', key)
                raise base.LostRace() from None
            raise
        LOG.debug('Wrote %s', key)
        return key, entry, (response['_seq_no'], response['_primary_term'])

    def _create_all(self, creates, refresh, applied, stamp=None):
        if len(creates) == 1:
            key, entry = creates[0]
            try:
                response = self.writer.create(
                    index=self._index, id=key,
                    document=_source(entry.current, stamp), refresh=refresh,
                    require_alias=True)
            except elasticsearch.ConflictError:
                if entry.current.kind == audit.AUDIT_KIND:  # seq taken
                    raise base.LostRace() from None
                raise base.IdTaken(f'{entry.current.kind} '
                                   f'{entry.current.id!r} already exists') \
                    from None
            applied.append((key, entry, (response['_seq_no'],
                                         response['_primary_term'])))
            return
        for start in range(0, len(creates), _BULK_CHUNK):
            chunk = creates[start:start + _BULK_CHUNK]
            operations = []
            for key, entry in chunk:
                operations.append({'create': {'_id': key}})
                operations.append(_source(entry.current, stamp))
            last = start + _BULK_CHUNK >= len(creates)
            response = self.writer.bulk(
                index=self._index, operations=operations,
                refresh=refresh if last else 'false', require_alias=True)
            collision = None
            failure = None
            for (key, entry), item in zip(chunk, response['items']):
                result = item.get('create', {})
                status = result.get('status', 500)
                if status < 300:
                    applied.append((key, entry, (result['_seq_no'],
                                                 result['_primary_term'])))
                elif status == 409:
                    collision = entry.current
                else:
                    failure = result
            if failure is not None:
                LOG.warning('Elasticsearch refused a bulk create: %s',
                            failure.get('error'))
                if failure.get('status', 500) >= 500 or failure.get(
                        'status') == 429:
                    raise errors.Unavailable(_UNAVAILABLE)
                raise errors.StorageError(
                    'the search cluster refused a request')
            if collision is not None:
                if collision.kind == audit.AUDIT_KIND:  # seq taken
                    raise base.LostRace()
                raise base.IdTaken(f'{collision.kind} {collision.id!r} '
                                   'already exists')

    def _undo(self, applied):
        """Revert applied writes, newest first, each only if unchanged;
        tell whether all were reverted."""
        complete = True
        for key, entry, (seq_no, term) in reversed(applied):
            try:
                if entry.original is None:
                    self.writer.delete(index=self._index, id=key,
                                       if_seq_no=seq_no,
                                       if_primary_term=term,
                                       refresh=self._refresh)
                elif entry.current is None:
                    self.writer.create(index=self._index, id=key,
                                       document=_source(entry.original,
                                                        entry.stamp),
                                       refresh=self._refresh,
                                       require_alias=True)
                else:
                    self.writer.index(index=self._index, id=key,
                                      document=_source(entry.original,
                                                       entry.stamp),
                                      if_seq_no=seq_no,
                                      if_primary_term=term,
                                      refresh=self._refresh,
                                      require_alias=True)
                LOG.debug('Undid the write of %s', key)
            except _CLIENT_ERRORS as exc:
                complete = False
                LOG.error('Could not undo the write of %s (a concurrent '
                          'change may have been partly applied): %s', key,
                          exc)
        return complete

    # -- service -----------------------------------------------------------

    def ping(self):
        with _guard('checking the search cluster'):
            health = self.client.cluster.health()
        if health.get('status') == 'red':
            LOG.warning('Elasticsearch cluster health is red')
            raise errors.Unavailable(_UNAVAILABLE)

    def _alias_targets(self):
        """Concrete indices behind the alias ([] when there is none)."""
        try:
            response = self.client.indices.get_alias(name=self._index)
        except elasticsearch.NotFoundError:
            return []
        return sorted(response.body)

    def schema_exists(self):
        """Tell whether the index (or anything of that name) exists."""
        with _guard('reading the schema'):
            return bool(self.client.indices.exists(index=self._index))

    def upgrade_schema(self, kinds=None):
        """Create the index, or update the mappings of ``kinds`` (all by
        default) of an existing one."""
        opts = self.conf.elasticsearch
        kinds = base.KINDS if kinds is None else tuple(kinds)
        for kind in kinds:
            _check_kind(kind)
        with _guard('upgrading the schema'):
            if not self._alias_targets():
                if self.client.indices.exists(index=self._index):
                    LOG.error('An index named %s exists that freezer-api '
                              'did not create', self._index)
                    raise errors.StorageError(
                        f'an index named {self._index!r} exists that this '
                        'release did not create; remove it or choose '
                        'another [elasticsearch] index')
                try:
                    self.client.indices.create(
                        index=self._concrete,
                        mappings=mappings.mappings(),
                        settings=mappings.index_settings(
                            opts.number_of_shards, opts.number_of_replicas),
                        aliases={self._index: {}})
                    LOG.info('Created index %s (alias %s)', self._concrete,
                             self._index)
                    return
                except elasticsearch.BadRequestError as exc:
                    if _error_type(exc) != 'resource_already_exists_exception':
                        raise
                    # Created meanwhile by another process, or left
                    # without its alias: (re)attach the alias.
                    self.client.indices.put_alias(index=self._concrete,
                                                  name=self._index)
            body = mappings.mappings(kinds, full=False)
            self.client.indices.put_mapping(index=self._index, **body)

    def drop_schema(self):
        with _guard('dropping the schema'):
            targets = self._alias_targets()
            if not targets and self.client.indices.exists(
                    index=self._index):
                targets = [self._index]
            if self.client.indices.exists(index=self._concrete):
                targets = sorted(set(targets) | {self._concrete})
            if targets:
                self.client.indices.delete(index=','.join(targets),
                                           ignore_unavailable=True)
                LOG.info('Deleted index %s', ', '.join(targets))

    def describe_schema(self, kinds=None):
        """The index, its settings and its mappings (of ``kinds`` only, with
        the internal fields, when given)."""
        described = {'driver': 'elasticsearch', 'index': self._index,
                     'exists': False}
        with _guard('describing the schema'):
            targets = self._alias_targets()
            if not targets:
                if self.client.indices.exists(index=self._index):
                    described.update(exists=True, alias=False)
                return described
            found = self.client.indices.get(index=','.join(targets)).body
        indices = {}
        for name, info in sorted(found.items()):
            index_mappings = info.get('mappings', {})
            if kinds is not None:
                keep = set(mappings.INTERNAL_FIELDS) | set(kinds)
                index_mappings = dict(index_mappings)
                index_mappings['properties'] = {
                    k: v for k, v in index_mappings.get(
                        'properties', {}).items() if k in keep}
            settings = info.get('settings', {}).get('index', {})
            indices[name] = {
                'mappings': index_mappings,
                'settings': {
                    'number_of_shards': settings.get('number_of_shards'),
                    'number_of_replicas': settings.get(
                        'number_of_replicas'),
                },
            }
        described.update(exists=True, alias=True, indices=indices)
        return described

    def update_settings(self):
        """Apply ``number_of_replicas`` from the configuration."""
        replicas = self.conf.elasticsearch.number_of_replicas
        with _guard('updating the index settings'):
            if not self._alias_targets():
                raise errors.Unavailable(_NO_INDEX)
            self.client.indices.put_settings(
                index=self._index,
                settings={'index': {'number_of_replicas': replicas}})
        return True

    def close(self):
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                LOG.debug('Error while closing the client: %s', exc)
