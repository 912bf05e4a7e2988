"""Storage driver on Elasticsearch 8.

Modules
    ``mappings`` the index layout; ``documents`` the stored form of a
    document (its ``_id`` and ``_source``); ``failures`` what the client's
    errors mean; ``journal`` how changes of several documents are made
    all-or-nothing and rolled back when cut short (its docstring states
    what is atomic against what, what a reader can see and what recovery
    guarantees). This module: the client, reads, searches, transactions
    and the schema.

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
    is refreshed. With ``[elasticsearch] refresh = true`` (the default) a
    change returns once a refresh that began after its writes has
    finished; with ``on_search`` writes do not refresh, and a search first
    waits for a refresh that began after it was asked, which shows every
    write acknowledged before, whichever process wrote it. In both, the
    concurrent waiters of a process share one refresh (``refreshes``).

Transactions
    ``atomic`` runs the change against a private overlay: reads go to the
    engine (real-time get, remembering each document's
    ``_seq_no``/``_primary_term``), writes stay in memory and the change
    sees them. When the change returns, the journal applies the writes,
    each conditional on the sequence number that was read (see
    ``journal``). A change that lost a race runs again after a short random
    pause (``run_atomic``): one that lost to another writer's commit runs
    in turn with the other writers that did, in any process (``turns``),
    for up to ``contention_timeout`` seconds; any other, up to
    ``conflict_retries`` times. Every process looks for interrupted
    changes at its first change, then at most every few seconds.
"""

import copy
import dataclasses
import logging
import os
import threading

import elasticsearch

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.elasticsearch import audit
from freezer_api.storage.elasticsearch import cursors
from freezer_api.storage.elasticsearch import documents
from freezer_api.storage.elasticsearch import failures
from freezer_api.storage.elasticsearch import journal as journal_module
from freezer_api.storage.elasticsearch import mappings
from freezer_api.storage.elasticsearch import refreshes
from freezer_api.storage.elasticsearch import turns as turns_module

__all__ = ['ElasticsearchDriver', 'doc_key']

LOG = logging.getLogger(__name__)

# the _id of a document (here for the tests and tools that name it)
doc_key = documents.doc_key

# Elasticsearch's default index.max_result_window: deeper pages are read
# with search_after.
_RESULT_WINDOW = 10_000


class _Transaction(audit.TransactionAudit, base.Transaction):
    """One attempt of an ``atomic`` change: reads hit the engine, writes
    wait in ``_entries`` until ``_commit``."""

    def __init__(self, driver):
        self._driver = driver
        self._entries = {}
        self.chain_lock = None  # see TransactionAudit.append_audit
        self.sealed_heads = {}  # project -> head after its last record

    def _check(self):
        if self.doomed is not None:
            raise self.doomed

    def _load(self, kind, project_id, doc_id):
        key = doc_key(kind, project_id, doc_id)
        entry = self._entries.get(key)
        if entry is None:
            hit = self._driver._get_raw(key)
            if hit is None:
                entry = journal_module.Entry(None, None)
            else:
                entry = journal_module.Entry.of_hit(hit)
            self._entries[key] = entry
        return key, entry

    def get(self, kind, doc_id, scope):
        documents.check_kind(kind)
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
        with failures.guard('reading a document'):
            hits = self._driver._search_hits(
                kind, scope, [{'term': {'id': doc_id}}], size=100,
                seq_no=True)
        for hit in hits:
            key = hit['_id']
            if key not in self._entries:
                self._entries[key] = journal_module.Entry.of_hit(hit)
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
        documents.check_kind(kind)
        self._check()
        key = doc_key(kind, project_id, doc_id)
        entry = self._entries.get(key)
        if entry is None:
            if self._driver._exists(key):
                raise base.IdTaken(f'{kind} {doc_id!r} already exists')
            entry = self._entries[key] = journal_module.Entry(None, None)
        elif entry.current is not None:
            raise base.IdTaken(f'{kind} {doc_id!r} already exists')
        record = base.Record(kind=kind, id=doc_id, project_id=project_id,
                             user_id=user_id, version=1,
                             created_at=created_at, doc=copy.deepcopy(doc))
        entry.current = record
        return record

    def _current(self, record):
        documents.check_kind(record.kind)
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


class ElasticsearchDriver(audit.DriverAudit, cursors.DriverCursors,
                          base.StorageDriver):
    """Documents in an Elasticsearch 8 index."""

    backoff_base = 0.01
    backoff_cap = 0.25
    waits_in_turn = True

    def __init__(self, conf):
        super().__init__(conf)
        opts = conf.elasticsearch
        self._index = opts.index
        self._concrete = f'{opts.index}-v{mappings.SCHEMA_VERSION}'
        self.max_attempts = opts.conflict_retries
        self.contention_timeout = opts.contention_timeout
        self._timeout = opts.timeout
        self._query_timeout = opts.query_timeout
        self._client_lock = threading.Lock()
        self._client = None
        self._pid = None
        self.refreshes = refreshes.RefreshGroup(opts.refresh,
                                                self._refresh_index)
        self.journal = journal_module.Journal(self, self._get_raw,
                                              self._index, self.refreshes)
        self.turns = turns_module.Turns(self, self._index)
        # a project's chain -> one of these (by hash; two projects may
        # share one, and a change holds one at most)
        self._chain_locks = [threading.Lock() for _ in range(64)]
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

    def hold_chain(self, project_id):
        """Take this process's lock of a project's audit chain, for a
        change's head read and commit; None if it stayed held for
        ``contention_timeout`` (the change then races, as between
        processes).

        PERF: the changes of one project all append to its chain; raced
        for, the losers' writes are undone and run again, so that four
        threads of one process got no more through than one. Queued, each
        of them seals after the record the one before it wrote.
        """
        lock = self._chain_locks[hash(project_id) % len(self._chain_locks)]
        return lock if lock.acquire(timeout=self.contention_timeout) \
            else None

    def _refresh_index(self):
        with failures.guard('refreshing the index'):
            self.client.indices.refresh(index=self._index)

    # -- low-level reads ---------------------------------------------------

    def _get_raw(self, key):
        """Real-time get of one stored document; None when absent."""
        with failures.guard('reading a document'):
            try:
                return self.client.get(index=self._index, id=key,
                                       realtime=True)
            except elasticsearch.NotFoundError as exc:
                if failures.error_type(exc) is None:
                    return None  # {"found": false}
                raise

    def _exists(self, key):
        with failures.guard('reading a document'):
            exists = self.client.exists(index=self._index, id=key,
                                        realtime=True)
        if exists.meta.status == 404:
            # HEAD answers carry no body: tell a missing document from a
            # missing index.
            with failures.guard('reading a document'):
                if not self.client.indices.exists(index=self._index):
                    raise errors.Unavailable(failures.NO_INDEX)
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
        self.refreshes.before_search()
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
        documents.check_kind(kind)
        if kind in base.PROJECT_UNIQUE_KINDS and scope.project_id is None:
            with failures.guard('reading a document'):
                hits = self._search_hits(kind, scope,
                                         [{'term': {'id': doc_id}}], size=1)
            if not hits:
                raise errors.NotFound(f'{kind} {doc_id!r} not found')
            return documents.record(hits[0]['_source'])
        hit = self._get_raw(doc_key(kind, scope.project_id, doc_id))
        if hit is not None:
            record = documents.record(hit['_source'])
            if scope.contains(record.project_id, record.user_id):
                return record
        raise errors.NotFound(f'{kind} {doc_id!r} not found')

    def list(self, kind, scope, query, limit, offset):
        documents.check_kind(kind)
        limit = max(0, min(int(limit), base.MAX_LIST_LIMIT))
        offset = max(0, int(offset))
        if limit == 0:
            return []
        filters, must_not = self._query(query)
        body_query = {'bool': {'filter': self._filters(kind, scope)
                               + filters}}
        if must_not:
            body_query['bool']['must_not'] = must_not
        with failures.guard('listing documents'):
            if offset + limit <= _RESULT_WINDOW:
                response = self._search(
                    query=body_query, sort=self._SORT,
                    from_=offset, size=limit, track_total_hits=False)
                hits = response['hits']['hits']
            else:
                hits = self._deep_page(body_query, limit, offset)
        return [documents.record(hit['_source']) for hit in hits]

    def _deep_page(self, body_query, limit, offset):
        """A page past the result window: walk there with search_after."""
        self.refreshes.before_search()
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
        documents.check_kind(kind)
        record = base.Record(kind=kind, id=doc_id, project_id=project_id,
                             user_id=user_id, version=1,
                             created_at=created_at, doc=copy.deepcopy(doc))
        key = doc_key(kind, project_id, doc_id)
        with failures.guard('creating a document'):
            try:
                self.writer.create(
                    index=self._index, id=key,
                    document=documents.source(record),
                    refresh=self.refreshes.of_change,
                    require_alias=True)
            except elasticsearch.ConflictError:
                raise base.IdTaken(f'{kind} {doc_id!r} already exists') \
                    from None
        self.refreshes.after_change()
        return record

    def atomic(self, change):
        self.journal.maybe_recover()
        return super().atomic(change)

    def attempt(self, change, attempt):
        if attempt.lost_on is None:
            return self._attempt(change)
        # Lost to another writer's commit: run again in turn with the
        # other writers that did (see ``turns``).
        with self.turns.turn(attempt.lost_on, attempt.deadline):
            return self._attempt(change)

    def _attempt(self, change):
        txn = _Transaction(self)
        try:
            # NOTE: writes wait in the transaction until the commit:
            # nothing to roll back.
            result = txn.run(change, abort=lambda: None)
            wrote = self._commit(txn)
            txn.committed()
        finally:
            if txn.chain_lock is not None:
                txn.chain_lock.release()
        if wrote:
            # after the chain is let go: the next writer reads it in real
            # time, and may then share this refresh
            self.refreshes.after_change()
        return result

    # -- commit ------------------------------------------------------------

    def _commit(self, txn):
        return self.journal.commit(*txn.writes())

    def recover_interrupted(self, everything=False):
        """Roll back the changes of writers that died mid-change (see
        ``journal.Journal.recover``); return how many."""
        return self.journal.recover(everything)

    # -- service -----------------------------------------------------------

    def ping(self):
        with failures.guard('checking the search cluster'):
            health = self.client.cluster.health()
        if health.get('status') == 'red':
            LOG.warning('Elasticsearch cluster health is red')
            raise failures.unavailable()

    def _alias_targets(self):
        """Concrete indices behind the alias ([] when there is none)."""
        try:
            response = self.client.indices.get_alias(name=self._index)
        except elasticsearch.NotFoundError:
            return []
        return sorted(response.body)

    def schema_exists(self):
        """Tell whether the index (or anything of that name) exists."""
        with failures.guard('reading the schema'):
            return bool(self.client.indices.exists(index=self._index))

    def upgrade_schema(self, kinds=None):
        """Create the index, or update the mappings of ``kinds`` (all by
        default) of an existing one."""
        opts = self.conf.elasticsearch
        kinds = base.KINDS if kinds is None else tuple(kinds)
        for kind in kinds:
            documents.check_kind(kind)
        with failures.guard('upgrading the schema'):
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
                    if failures.error_type(exc) != (
                            'resource_already_exists_exception'):
                        raise
                    # Created meanwhile by another process, or left
                    # without its alias: (re)attach the alias.
                    self.client.indices.put_alias(index=self._concrete,
                                                  name=self._index)
            body = mappings.mappings(kinds, full=False)
            self.client.indices.put_mapping(index=self._index, **body)

    def drop_schema(self):
        with failures.guard('dropping the schema'):
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
        with failures.guard('describing the schema'):
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
        with failures.guard('updating the index settings'):
            if not self._alias_targets():
                raise errors.Unavailable(failures.NO_INDEX)
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
