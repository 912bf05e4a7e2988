"""Cursors on Elasticsearch (see ``StorageDriver.lease_cursor``).

Each cursor is one document of kind ``_cursor`` with ``_id``
``_cursor/<name>/<key>`` (both quoted), the cursor kept whole in ``doc``
(not indexed). Reads are real-time gets. A lease or an advance is a
conditional write on the ``_seq_no`` and ``_primary_term`` that were
read: of two writers that read the same version, the second is refused
(a version conflict), reads again and decides again. The first lease of a
key is a ``create``, which refuses an ``_id`` already taken.
"""

import urllib.parse
from typing import Any

import elasticsearch

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.elasticsearch import failures

__all__ = ['CURSOR_KIND', 'cursor_key', 'DriverCursors']

CURSOR_KIND = '_cursor'
# Conflicting writes before a lease or an advance gives up.
_MAX_TRIES = 16


def cursor_key(name, key):
    quote = urllib.parse.quote
    return f'{CURSOR_KIND}/{quote(name, safe="")}/{quote(key, safe="")}'


def _source(cursor):
    return {'kind': CURSOR_KIND, 'key': cursor_key(cursor.name, cursor.key),
            'id': cursor.key, 'project_id': '', 'user_id': '',
            'version': 1, 'created_at': 0, 'seq': cursor.position,
            'doc': {'name': cursor.name, 'key': cursor.key,
                    'position': cursor.position, 'holder': cursor.holder,
                    'until': cursor.until}}


def _cursor(hit):
    doc = hit['_source']['doc']
    return base.Cursor(doc['name'], doc['key'], doc['position'],
                       doc['holder'], doc['until'])


class DriverCursors:
    """The cursor calls of ``ElasticsearchDriver`` (a mixin)."""

    # what ElasticsearchDriver provides
    _get_raw: Any
    _index: Any
    writer: Any

    def get_cursor(self, name, key):
        hit = self._get_raw(cursor_key(name, key))
        return None if hit is None else _cursor(hit)

    def _put_cursor(self, hit, cursor):
        """Write ``cursor`` over ``hit`` (None: create it); False when
        another writer got there first."""
        key = cursor_key(cursor.name, cursor.key)
        with failures.guard('writing a cursor'):
            try:
                if hit is None:
                    self.writer.create(
                        index=self._index, id=key, refresh='false',
                        require_alias=True, document=_source(cursor))
                else:
                    self.writer.index(
                        index=self._index, id=key, refresh='false',
                        require_alias=True, document=_source(cursor),
                        if_seq_no=hit['_seq_no'],
                        if_primary_term=hit['_primary_term'])
            except elasticsearch.ConflictError:
                return False
        return True

    def lease_cursor(self, name, key, holder, now, until):
        for _ in range(_MAX_TRIES):
            hit = self._get_raw(cursor_key(name, key))
            if hit is None:
                position = 0
            else:
                current = _cursor(hit)
                if current.holder not in ('', holder) and (
                        current.until > now):
                    return None
                position = current.position
            leased = base.Cursor(name, key, position, holder, until)
            if self._put_cursor(hit, leased):
                return leased
        raise errors.Conflict('the cursor kept changing; try again')

    def advance_cursor(self, name, key, holder, position, until):
        for _ in range(_MAX_TRIES):
            hit = self._get_raw(cursor_key(name, key))
            if hit is None or _cursor(hit).holder != holder:
                return False
            current = _cursor(hit)
            moved = base.Cursor(name, key, max(position, current.position),
                                holder if until else '', until)
            if self._put_cursor(hit, moved):
                return True
        raise errors.Conflict('the cursor kept changing; try again')
