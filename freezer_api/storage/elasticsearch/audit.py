"""The audit trail on Elasticsearch (see ``StorageDriver.append_audit``).

Each record is one document of kind ``_audit`` with ``_id``
``_audit/<project>/<seq>``, written by the same journal change as the
documents it records (a create in that change's bulk request, stamped like
the others, so an interrupted change loses its records with its writes).
It has no search fields: the record is kept whole in ``doc`` (not
indexed) and only ``project_id``, ``seq`` and ``created_at`` (the record's
``at``) are indexed.

The chain head is the record with the highest ``seq``. A change seals
after the head this process last wrote, once a real-time get showed that
record stored as written (its change may have been rolled back), or else
after the newest record a search finds, and checks with a real-time get
that ``seq + 1`` is still free, moving forward while it is not. A head
written by a change still under way (its record carries the stamp of an
intent that is still there) is waited for: that change may yet undo it,
and a record sealed after it would then name a record that is gone.
``create`` refuses an ``_id`` already taken, so two writers racing for
one ``seq`` cannot both commit: the loser's whole change is undone and
run again (``LostRace``), and the chain never forks. Purging keeps each
project's newest record: it is the head.
"""

import itertools
import urllib.parse
from typing import Any

import elasticsearch

from freezer_api.storage import base
from freezer_api.storage.elasticsearch import failures

__all__ = ['AUDIT_KIND', 'chain_spot', 'audit_key', 'audit_source',
           'TransactionAudit', 'DriverAudit']

AUDIT_KIND = '_audit'
# Events claimed once (``claim_event``).
EVENT_KIND = '_event'
# Forward probes of a stale head before the change gives up and runs again,
# and how many records one request reads.
_MAX_PROBES = 64
_PROBE_BATCH = 4


def chain_spot(project_id):
    """What changes of one project's chain contend for (the keys of its
    records without the seq)."""
    return f'{AUDIT_KIND}/{urllib.parse.quote(project_id, safe="")}'


def audit_key(project_id, seq):
    return f'{AUDIT_KIND}/{urllib.parse.quote(project_id, safe="")}/{seq}'


def audit_source(record, key, stamp=None):
    """The stored form of an audit record held in a ``base.Record``."""
    src = {'kind': AUDIT_KIND, 'key': key, 'id': record.id,
           'project_id': record.project_id, 'user_id': '',
           'version': 1, 'created_at': record.created_at,
           'seq': record.doc['seq'], 'doc': record.doc}
    if stamp is not None:
        src['txn'] = stamp
    return src


class _AuditEntry:
    """A create in the transaction's journal (as the driver's _Entry)."""

    __slots__ = ('seq', 'original', 'stamp', 'current')

    def __init__(self, record):
        self.seq = None
        self.original = None
        self.stamp = None
        self.current = record

    @property
    def changed(self):
        return True


class TransactionAudit:
    """``append_audit`` for the driver's ``_Transaction`` (a mixin)."""

    # what the driver's _Transaction provides
    _driver: Any
    _entries: Any
    _check: Any
    lost_race: Any
    doomed: Exception | None
    chain_lock: Any
    sealed_heads: dict

    def append_audit(self, project_id, entries, seal):
        driver = self._driver
        self._check()
        if self.chain_lock is None:  # the first chain of the change
            self.chain_lock = driver.hold_chain(project_id)
        # after this change's own records, when it already wrote some
        head = self.sealed_heads.get(project_id)
        if head is None:
            head = self._stored_head(project_id)
        sealed = seal(entries, head[0], head[1])
        for record in sealed:
            key = audit_key(project_id, record['seq'])
            self._entries[key] = _AuditEntry(base.Record(
                kind=AUDIT_KIND, id=str(record['seq']),
                project_id=project_id, user_id='', version=1,
                created_at=record['at'], doc=record))
        # Remembered once the change commits (``committed``): a change
        # that lost its race had its records undone, and a head remembered
        # from it would fail the next change's check and cost a search
        # (with ``on_search``, a refresh too). Until then the driver
        # remembers the stored head this change sealed after.
        self.sealed_heads[project_id] = (sealed[-1]['seq'],
                                         sealed[-1]['hash'], None)
        return sealed

    def _stored_head(self, project_id):
        """The newest record of the chain, once the change that wrote it
        is over (see ``DriverAudit._settled``)."""
        driver = self._driver
        head = driver._audit_heads.get(project_id)
        if head is not None:
            # None when purged, or rolled back by a sweep: look again
            head = driver._audit_head_after(project_id, head, stands=True)
        if head is None:
            head = driver._audit_head_after(
                project_id, driver._newest_audit(project_id))
        if head is None:
            raise self.lost_race()
        if not driver._settled(project_id, head):
            # rolled back, or still under way: run again (in turn)
            self.doomed = base.Contended(chain_spot(project_id))
            raise self.doomed
        # where the next change looks from, should this one lose its race
        head = driver._audit_heads[project_id] = (head[0], head[1], None)
        return head

    def committed(self):
        """Remember the heads this change's records made."""
        if self.sealed_heads:
            self._driver._audit_heads.update(self.sealed_heads)


class DriverAudit:
    """The audit reads and the purge for ``ElasticsearchDriver``."""

    # what ElasticsearchDriver provides
    _search: Any
    _get_raw: Any
    journal: Any
    _index: Any
    client: Any
    writer: Any

    @property
    def _audit_heads(self):
        heads = self.__dict__.get('_audit_head_cache')
        if heads is None:
            heads = self.__dict__.setdefault('_audit_head_cache', {})
        return heads

    def _audit_filters(self, project_id, extra=()):
        filters = [{'term': {'kind': AUDIT_KIND}}]
        if project_id is not None:
            filters.append({'term': {'project_id': project_id}})
        return filters + list(extra)

    def _audit_hits(self, what, filters, sort, size, offset=0):
        with failures.guard(what):
            response = self._search(
                query={'bool': {'filter': filters}}, sort=sort, size=size,
                from_=offset, track_total_hits=False)
        return response['hits']['hits']

    def _audit_search(self, what, filters, sort, size, offset=0):
        return [hit['_source']['doc'] for hit in self._audit_hits(
            what, filters, sort, size, offset)]

    def _audit_head_after(self, project_id, head, stands=False,
                          probes=_MAX_PROBES):
        """The chain's head from ``head`` (seq, hash, journal stamp) on:
        the last of the records stored after it without a gap (``head``
        itself when there is none); None when ``stands`` and
        record ``head`` is not stored as remembered (the change that
        wrote it may have been rolled back), or after ``probes`` records
        read (None: no limit).

        PERF: one real-time multi-get reads the record and the next
        ones, where a get of each took a round trip while the change
        holds the chain.
        """
        batches = (itertools.count() if probes is None
                   else range(probes // _PROBE_BATCH))
        for _ in batches:
            first = head[0] if stands else head[0] + 1
            seqs = range(first, head[0] + _PROBE_BATCH + 1)
            with failures.guard('reading the audit trail'):
                found = self.client.mget(
                    index=self._index, realtime=True,
                    ids=[audit_key(project_id, seq) for seq in seqs])
            docs = found['docs']
            if stands:
                stored = docs[0]
                if not stored.get('found') or stored['_source']['doc'].get(
                        'hash') != head[1]:
                    return None
                docs = docs[1:]
                stands = False
            for stored in docs:
                if not stored.get('found'):
                    return head
                head = (stored['_source']['seq'],
                        stored['_source']['doc']['hash'],
                        stored['_source'].get('txn'))
        return None

    def _settled(self, project_id, head):
        """Whether the head record ``(seq, hash, stamp)`` stands, once
        the change that wrote it is over (a stamp of None: nothing to wait
        for).

        A change stores its records before its other writes are done; if
        it then fails, it undoes them. A record sealed after one of those
        would name a record that is gone, and the chain would break. So a
        record that carries the journal stamp of a change still under way
        (its intent is there) is waited for, a little; when its intent is
        gone, the change either finished or was rolled back (its writes
        undone before the intent), and a second read of the record tells
        which. False when it was rolled back, or is still under way after
        ``journal.SETTLE_WAIT`` seconds (``Journal.over``).
        """
        stamp = head[2]
        if stamp is None:
            return True  # remembered from a change over, or the genesis
        if not self.journal.over(stamp):
            return False
        stored = self._get_raw(audit_key(project_id, head[0]))
        return stored is not None and \
            stored['_source']['doc'].get('hash') == head[1]

    def _newest_audit(self, project_id):
        """(seq, hash, journal stamp) of the newest record found by a
        search."""
        hits = self._audit_hits('reading the audit trail',
                                self._audit_filters(project_id),
                                [{'seq': 'desc'}], 1)
        if not hits:
            return (0, base.AUDIT_GENESIS, None)
        newest = hits[0]['_source']
        return (newest['seq'], newest['doc']['hash'], newest.get('txn'))

    def list_audit(self, project_id, since, until, limit, offset):
        bounds = {}
        if since is not None:
            bounds['gte'] = since
        if until is not None:
            bounds['lt'] = until
        extra = [{'range': {'created_at': bounds}}] if bounds else []
        sort = ([{'seq': 'asc'}] if project_id is not None else
                [{'created_at': 'asc'}, {'project_id': 'asc'},
                 {'seq': 'asc'}])
        return self._audit_search('reading the audit trail',
                                  self._audit_filters(project_id, extra),
                                  sort, limit, offset)

    def audit_chain(self, project_id, after_seq, limit):
        return self._audit_search(
            'reading the audit trail',
            self._audit_filters(project_id,
                                [{'range': {'seq': {'gt': after_seq}}}]),
            [{'seq': 'asc'}], limit)

    def audit_head(self, project_id):
        head = self._audit_head_after(
            project_id, self._newest_audit(project_id), probes=None)
        return None if head[0] == 0 else head[:2]

    def audit_projects(self):
        projects: list[str] = []
        after = None
        while True:
            composite = {'size': 1000, 'sources': [
                {'p': {'terms': {'field': 'project_id'}}}]}
            if after is not None:
                composite['after'] = after
            with failures.guard('reading the audit trail'):
                response = self._search(
                    query={'bool': {'filter': self._audit_filters(None)}},
                    size=0, aggs={'projects': {'composite': composite}})
            agg = response['aggregations']['projects']
            projects.extend(b['key']['p'] for b in agg['buckets'])
            after = agg.get('after_key')
            if not agg['buckets'] or after is None:
                return sorted(projects)

    def claim_event(self, event_id, at):
        key = f'{EVENT_KIND}/{urllib.parse.quote(event_id, safe="")}'
        with failures.guard('claiming an event'):
            try:
                self.writer.create(
                    index=self._index, id=key, refresh='false',
                    require_alias=True,
                    document={'kind': EVENT_KIND, 'key': key, 'id': event_id,
                              'project_id': '', 'user_id': '', 'version': 1,
                              'created_at': at, 'doc': {}})
            except elasticsearch.ConflictError:
                return False
        return True

    def purge_audit(self, before):
        # NOTE: searches and bulk deletes, not _delete_by_query: that one
        # belongs to a module (reindex) a cluster may leave out.
        removed = 0
        for project_id in self.audit_projects():
            newest = self._newest_audit(project_id)[0]
            filters = self._audit_filters(project_id, [
                {'range': {'created_at': {'lt': before}}},
                {'range': {'seq': {'lt': newest}}}])
            while True:
                with failures.guard('purging the audit trail'):
                    hits = self._search(
                        query={'bool': {'filter': filters}},
                        sort=[{'seq': 'asc'}], size=1000, source=False,
                        track_total_hits=False)['hits']['hits']
                    if not hits:
                        break
                    response = self.writer.bulk(
                        index=self._index, refresh=True, operations=[
                            {'delete': {'_id': hit['_id']}}
                            for hit in hits])
                removed += sum(
                    1 for item in response['items']
                    if item.get('delete', {}).get('status') == 200)
        return removed
