"""Stored form of the documents of the Elasticsearch driver.

Each document of the store is one Elasticsearch document (layout in
``mappings``): its ``_id`` is ``doc_key``; its ``_source`` (``source``)
holds the bookkeeping of ``base.Record``, the freezer document under
``doc``, the search fields (``mappings.search_fields``) and the typed copy
(``mappings.typed_fields``), the last two indexed but not kept in
``_source``. A document written by a change of several documents carries
the key of that change's journal entry under ``STAMP`` (see ``journal``).
"""

import hashlib
import urllib.parse

from freezer_api.storage import base
from freezer_api.storage.elasticsearch import audit
from freezer_api.storage.elasticsearch import mappings

__all__ = ['STAMP', 'check_kind', 'doc_key', 'record', 'source', 'image',
           'from_image']

_MAX_ID_BYTES = 512

# The field of a document written by a multi-document change: the key of
# that change's journal entry (its intent).
STAMP = 'txn'


def check_kind(kind):
    if kind not in base.KINDS:
        raise ValueError(f'unknown kind of document: {kind!r}')


def doc_key(kind, project_id, doc_id):
    """The Elasticsearch ``_id`` of a document.

    From the kind and the id, and the project for kinds whose ids are
    unique per project only; each part quoted, so that no two documents
    share one; a digest past Elasticsearch's limit of 512 bytes.
    """
    parts = [kind]
    if kind in base.PROJECT_UNIQUE_KINDS:
        parts.append(project_id)
    parts.append(doc_id)
    key = '/'.join(urllib.parse.quote(p, safe='') for p in parts)
    if len(key.encode('utf-8')) > _MAX_ID_BYTES:
        key = f'{kind}/#{hashlib.sha256(key.encode("utf-8")).hexdigest()}'
    return key


def record(src):
    """The ``base.Record`` of a stored ``_source``."""
    return base.Record.made(src['kind'], src['id'], src['project_id'],
                            src['user_id'], src['version'],
                            src['created_at'], src['doc'])


def source(rec, stamp=None):
    """The stored form of ``rec``; ``stamp``: the journal key of the
    multi-document change that writes it."""
    if rec.kind == audit.AUDIT_KIND:  # the audit trail: see audit.py
        return audit.audit_source(rec, audit.audit_key(
            rec.project_id, rec.doc['seq']), stamp)
    key = doc_key(rec.kind, rec.project_id, rec.id)
    src = {'kind': rec.kind, 'key': key, 'id': rec.id,
           'project_id': rec.project_id, 'user_id': rec.user_id,
           'version': rec.version, 'created_at': rec.created_at,
           'doc': rec.doc}
    if stamp is not None:
        src[STAMP] = stamp
    src.update(mappings.search_fields(rec.doc))
    src[rec.kind] = mappings.typed_fields(rec.kind, rec.doc)
    return src


def image(rec):
    """A record as JSON (in a journal entry); None for an absent one."""
    if rec is None:
        return None
    return {'kind': rec.kind, 'id': rec.id, 'project_id': rec.project_id,
            'user_id': rec.user_id, 'version': rec.version,
            'created_at': rec.created_at, 'doc': rec.doc}


def from_image(img):
    return None if img is None else base.Record(**img)
