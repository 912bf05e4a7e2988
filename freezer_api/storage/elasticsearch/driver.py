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
    few milliseconds); and if the process dies, or Elasticsearch becomes
    unreachable, between two writes of one change, the writes already
    applied stay (for example a session that lists a job whose own
    ``session_id`` was not yet set). Every write is logged at debug level.
"""

import contextlib
import copy
import dataclasses
import hashlib
import logging
import os
import threading
import urllib.parse

import elastic_transport
import elasticsearch

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.elasticsearch import mappings

__all__ = ['ElasticsearchDriver']

LOG = logging.getLogger(__name__)

_UNAVAILABLE = 'the search cluster is unavailable'
_NO_INDEX = ('the index does not exist; create it with '
             '"freezer-manage db sync"')

_BACKOFF_BASE = 0.01   # seconds, doubled on every attempt
_BACKOFF_CAP = 0.25

# Elasticsearch's default index.max_result_window: deeper pages are read
# with search_after.
_RESULT_WINDOW = 10_000
_BULK_CHUNK = 500
_MAX_ID_BYTES = 512

# Re-runs of changes that lost a race take turns within a process, so that
# contention from threads of one process does not starve them; processes
# still race optimistically.
_CONTENDED = threading.RLock()


class _Retry(Exception):
    """The change lost a race; run it again."""


class _Collision(errors.Conflict):
    """``insert`` found its id taken."""


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


def _source(record):
    key = doc_key(record.kind, record.project_id, record.id)
    src = {'kind': record.kind, 'key': key, 'id': record.id,
           'project_id': record.project_id, 'user_id': record.user_id,
           'version': record.version, 'created_at': record.created_at,
           'doc': record.doc}
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

    __slots__ = ('seq', 'original', 'current')

    def __init__(self, seq, original):
        # (_seq_no, _primary_term) of the stored document, None if absent.
        self.seq = seq
        self.original = original   # the stored Record, or None
        self.current = original    # as the transaction sees it now

    @property
    def changed(self):
        return self.current is not self.original


class _Transaction(base.Transaction):
    """One attempt of an ``atomic`` change: reads hit the engine, writes
    wait in ``_entries`` until ``_commit``."""

    def __init__(self, driver):
        self._driver = driver
        self._entries = {}
        self.doomed = None

    def _check(self):
        if self.doomed is not None:
            raise self.doomed

    def _lost_race(self):
        self.doomed = _Retry()
        return self.doomed

    def _load(self, kind, project_id, doc_id):
        key = doc_key(kind, project_id, doc_id)
        entry = self._entries.get(key)
        if entry is None:
            hit = self._driver._get_raw(key)
            if hit is None:
                entry = _Entry(None, None)
            else:
                entry = _Entry((hit['_seq_no'], hit['_primary_term']),
                               _record(hit['_source']))
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
                    _record(hit['_source']))
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
                raise _Collision(f'{kind} {doc_id!r} already exists')
            entry = self._entries[key] = _Entry(None, None)
        elif entry.current is not None:
            raise _Collision(f'{kind} {doc_id!r} already exists')
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
            raise self._lost_race()
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


class ElasticsearchDriver(base.StorageDriver):
    """Documents in an Elasticsearch 8 index."""

    def __init__(self, conf):
        super().__init__(conf)
        opts = conf.elasticsearch
        self._index = opts.index
        self._concrete = f'{opts.index}-v{mappings.SCHEMA_VERSION}'
        self._max_retries = opts.conflict_retries
        self._refresh = opts.refresh
        self._timeout = opts.timeout
        self._client_lock = threading.Lock()
        self._client = None
        self._pid = None
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

    def _search_hits(self, kind, scope, extra, size, seq_no=False):
        response = self.client.search(
            index=self._index,
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
                response = self.client.search(
                    index=self._index, query=body_query, sort=self._SORT,
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
            kwargs = {'search_after': after} if after is not None else {}
            response = self.client.search(
                index=self._index, query=body_query, sort=self._SORT,
                size=size, source=False, track_total_hits=False,
                filter_path='hits.hits.sort', **kwargs)
            hits = response.get('hits', {}).get('hits', [])
            if len(hits) < size:
                return []
            remaining -= len(hits)
            after = hits[-1]['sort']
        response = self.client.search(
            index=self._index, query=body_query, sort=self._SORT,
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
                raise _Collision(f'{kind} {doc_id!r} already exists') \
                    from None
        return record

    def atomic(self, change):
        return self._atomic(change)

    def _atomic(self, change):
        attempt = 0
        collided = False
        contended = False
        while True:
            attempt += 1
            try:
                if contended:
                    with _CONTENDED:
                        return self._attempt(change)
                return self._attempt(change)
            except _Retry:
                if attempt >= self._max_retries:
                    LOG.warning('Change still conflicting after %d attempts',
                                attempt)
                    raise errors.Conflict(
                        'the change kept conflicting with concurrent '
                        'writers; try again') from None
                contended = True
                base.backoff(attempt, _BACKOFF_BASE, _BACKOFF_CAP)
            except _Collision:
                # NOTE: the id may have been taken by a writer that raced
                # with this change; run it once more so that it sees the
                # winner, and let a second collision through.
                if collided or attempt >= self._max_retries:
                    raise
                collided = True

    def _attempt(self, change):
        txn = _Transaction(self)
        try:
            result = change(txn)
        except BaseException:
            if isinstance(txn.doomed, _Retry):
                # Whatever the change made of it, the attempt lost a race.
                raise txn.doomed from None
            raise
        if txn.doomed is not None:
            # The change swallowed one of our errors: never commit then.
            raise txn.doomed
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
        applied = []  # (key, entry, new seq) of writes done, for undo
        try:
            with _guard('writing documents'):
                for key, entry in conditional:
                    applied.append(self._conditional_write(key, entry,
                                                           refresh))
                if creates:
                    self._create_all(creates, refresh, applied)
                if refresh == 'false' and count > 1 and (
                        self._refresh == 'true'):
                    self.client.indices.refresh(index=self._index)
        except (_Retry, _Collision):
            self._undo(applied)
            raise
        except errors.StorageError:
            if applied:
                LOG.error('Writing a change failed after %d of its %d '
                          'writes; undoing them', len(applied), count)
                self._undo(applied)
            raise

    def _conditional_write(self, key, entry, refresh):
        seq_no, term = entry.seq
        try:
            if entry.current is None:
                response = self.writer.delete(
                    index=self._index, id=key, if_seq_no=seq_no,
                    if_primary_term=term, refresh=refresh)
            else:
                response = self.writer.index(
                    index=self._index, id=key,
                    document=_source(entry.current), if_seq_no=seq_no,
                    if_primary_term=term, refresh=refresh,
                    require_alias=True)
        except elasticsearch.ApiError as exc:
            if _is_version_conflict(exc) or (
                    entry.current is None and _status(exc) == 404):
                LOG.debug('Change lost a race on %s', key)
                raise _Retry() from None
            raise
        LOG.debug('Wrote %s', key)
        return key, entry, (response['_seq_no'], response['_primary_term'])

    def _create_all(self, creates, refresh, applied):
        if len(creates) == 1:
            key, entry = creates[0]
            try:
                response = self.writer.create(
                    index=self._index, id=key,
                    document=_source(entry.current), refresh=refresh,
                    require_alias=True)
            except elasticsearch.ConflictError:
                raise _Collision(f'{entry.current.kind} '
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
                operations.append(_source(entry.current))
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
                raise _Collision(f'{collision.kind} {collision.id!r} '
                                 'already exists')

    def _undo(self, applied):
        """Revert applied writes, newest first, each only if unchanged."""
        for key, entry, (seq_no, term) in reversed(applied):
            try:
                if entry.original is None:
                    self.writer.delete(index=self._index, id=key,
                                       if_seq_no=seq_no,
                                       if_primary_term=term,
                                       refresh=self._refresh)
                elif entry.current is None:
                    self.writer.create(index=self._index, id=key,
                                       document=_source(entry.original),
                                       refresh=self._refresh,
                                       require_alias=True)
                else:
                    self.writer.index(index=self._index, id=key,
                                      document=_source(entry.original),
                                      if_seq_no=seq_no,
                                      if_primary_term=term,
                                      refresh=self._refresh,
                                      require_alias=True)
                LOG.debug('Undid the write of %s', key)
            except _CLIENT_ERRORS as exc:
                LOG.error('Could not undo the write of %s (a concurrent '
                          'change may have been partly applied): %s', key,
                          exc)

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

    def close(self):
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                LOG.debug('Error while closing the client: %s', exc)
