"""Index layout of the Elasticsearch storage driver.

One index holds every kind of document (``storage.base.KINDS``; the name
in ``[elasticsearch] index`` is an alias of it, so that nothing can
auto-create it with a dynamic mapping). Each Elasticsearch document is::

    {"kind": "jobs", "key": <its _id>, "id": ..., "project_id": ...,
     "user_id": ..., "version": 3, "created_at": <microseconds>,
     "doc": {...the freezer document, stored as is, not indexed...},
     "keys": [...], "paths": [...], "nums": [...], "text": [...],
     "jobs": {...typed copy of the well-known fields...}}

``keys``, ``paths``, ``nums`` and ``text`` are the search index of spec D5,
built from ``storage.query.leaves`` exactly as the SQL driver's term rows
(see ``search_fields``); they and the typed copy are left out of the stored
``_source``. The typed copy under the kind's name maps ids and owner fields
as keywords, times and counters as longs, flags as booleans and free text as
analysed text. The driver never reads it back (its searches use the search
index); it is there for operators who query the index directly (Kibana,
``_search`` on e.g. ``jobs.job_id`` or ``backups.backup_metadata.level``),
and it is what ``freezer-manage db sync|update|show -m KIND`` acts on: the
per-kind mappings of spec F. ``tests/storage/test_elasticsearch.py`` keeps
it searchable. A document written by a change of several
documents also holds ``"txn": <key of that change's journal entry>`` (see
``journal``); an index created before that field existed gets it
from ``freezer-manage db sync``.
"""

from freezer_api.storage import base
from freezer_api.storage import terms

__all__ = ['SCHEMA_VERSION', 'index_settings', 'mappings', 'kind_mapping',
           'search_fields', 'typed_fields', 'term_form', 'number_form',
           'text_tokens', 'INTERNAL_FIELDS']

# Bumped when a change of the mappings needs a new index (a reindex).
SCHEMA_VERSION = 1

# Longest term stored as is; longer ones become a digest, so that equality
# stays exact and Lucene's 32766-byte term limit is never reached.
TERM_LENGTH = terms.ES_LENGTH

# Fields of the search index, left out of _source.
INDEX_FIELDS = ('keys', 'paths', 'nums', 'text')

_KEYWORD = {'type': 'keyword', 'ignore_above': 1024}
_LONG = {'type': 'long'}
_BOOL = {'type': 'boolean'}
_TEXT = {'type': 'text'}

_LONG_MIN, _LONG_MAX = -2 ** 63, 2 ** 63 - 1


def _obj(**properties):
    return {'properties': properties}


_SCHEDULE = _obj(
    time_created=_LONG, time_started=_LONG, time_ended=_LONG,
    status=_KEYWORD, event=_KEYWORD, result=_KEYWORD, current_pid=_LONG,
    schedule_date=_KEYWORD, schedule_interval=_KEYWORD,
    schedule_start_date=_KEYWORD, schedule_end_date=_KEYWORD,
    schedule_year=_KEYWORD, schedule_month=_KEYWORD, schedule_day=_KEYWORD,
    schedule_week=_KEYWORD, schedule_day_of_week=_KEYWORD,
    schedule_hour=_KEYWORD, schedule_minute=_KEYWORD,
    schedule_second=_KEYWORD)

_FREEZER_ACTION = _obj(
    action=_KEYWORD, mode=_KEYWORD, src_file=_KEYWORD,
    path_to_backup=_KEYWORD, backup_name=_KEYWORD, container=_KEYWORD,
    restore_abs_path=_KEYWORD, storage=_KEYWORD, engine=_KEYWORD,
    hostname=_KEYWORD, ssh_host=_KEYWORD, ssh_key=_KEYWORD,
    ssh_username=_KEYWORD, ssh_port=_LONG, log_file=_KEYWORD,
    max_level=_LONG, always_level=_LONG, restore_from_date=_KEYWORD,
    dry_run=_BOOL, no_incremental=_BOOL, overwrite=_BOOL, snapshot=_BOOL,
    encrypted=_BOOL, consistency_check=_BOOL)

_ACTION_BODY = dict(
    action_id=_KEYWORD, max_retries=_LONG, max_retries_interval=_LONG,
    mandatory=_BOOL, freezer_action=_FREEZER_ACTION)

_OWNER = dict(user_id=_KEYWORD, project_id=_KEYWORD)

# The typed copy of each kind: the fields the API documents.
KIND_PROPERTIES = {
    'backups': _obj(
        backup_id=_KEYWORD, user_name=_KEYWORD, status=_KEYWORD, **_OWNER,
        backup_metadata=_obj(
            container=_KEYWORD, backup_name=_KEYWORD, hostname=_KEYWORD,
            host_name=_KEYWORD, time_stamp=_LONG, level=_LONG,
            curr_backup_level=_LONG, max_level=_LONG, mode=_KEYWORD,
            fs_real_path=_KEYWORD, vol_snap_path=_KEYWORD,
            total_broken_links=_LONG, total_fs_files=_LONG,
            total_directories=_LONG, backup_size_uncompressed=_LONG,
            backup_size_compressed=_LONG, compression_alg=_KEYWORD,
            encrypted=_BOOL, client_os=_KEYWORD, broken_links=_KEYWORD,
            excluded_files=_KEYWORD, cli=_TEXT, version=_KEYWORD,
            job_id=_KEYWORD)),
    'clients': _obj(
        **_OWNER,
        client=_obj(
            client_id=_KEYWORD, uuid=_KEYWORD, hostname=_KEYWORD,
            description=_TEXT, is_central=_BOOL,
            supported_actions=_KEYWORD, supported_modes=_KEYWORD,
            supported_storages=_KEYWORD, supported_engines=_KEYWORD)),
    'jobs': _obj(
        job_id=_KEYWORD, client_id=_KEYWORD, session_id=_KEYWORD,
        session_tag=_LONG, session_name=_KEYWORD, description=_TEXT,
        **_OWNER, job_schedule=_SCHEDULE,
        job_actions=_obj(**_ACTION_BODY)),
    'actions': _obj(**_OWNER, **_ACTION_BODY),
    'sessions': _obj(
        session_id=_KEYWORD, session_tag=_LONG, description=_TEXT,
        hold_off=_LONG, schedule=_SCHEDULE, status=_KEYWORD,
        result=_KEYWORD, time_start=_LONG, time_end=_LONG,
        time_started=_LONG, time_ended=_LONG, last_start=_KEYWORD,
        **_OWNER),
    'runs': _obj(
        run_id=_KEYWORD, job_id=_KEYWORD, client_id=_KEYWORD,
        session_id=_KEYWORD, session_tag=_LONG, status=_KEYWORD,
        result=_KEYWORD, reason=_KEYWORD, start=_LONG, end=_LONG,
        expected_at=_LONG, last_report=_LONG, backups=_KEYWORD,
        description=_TEXT, **_OWNER),
    'presence': _obj(client_id=_KEYWORD, last_seen=_LONG, **_OWNER),
    'job_health': _obj(job_id=_KEYWORD, client_id=_KEYWORD,
                       settle_due=_LONG, settled_at=_LONG, **_OWNER),
}

INTERNAL_FIELDS = {
    'kind': {'type': 'keyword'},
    # The _id again: sorting on _id itself is not allowed.
    'key': {'type': 'keyword'},
    'id': {'type': 'keyword'},
    'project_id': {'type': 'keyword'},
    'user_id': {'type': 'keyword'},
    'version': {'type': 'long', 'index': False},
    'created_at': {'type': 'long'},
    # The place of an audit record in its project's chain (kind _audit,
    # see audit.py); absent from documents.
    'seq': {'type': 'long'},
    # The journal entry of the multi-document change that wrote the
    # document (see ``journal``); absent otherwise.
    'txn': {'type': 'keyword', 'index': False, 'doc_values': False},
    # The document itself: kept in _source, never parsed into fields (its
    # keys are chosen by clients, their types vary).
    'doc': {'type': 'object', 'enabled': False},
    # "<key as JSON>=<canonical value>" of every leaf, by nearest key...
    'keys': {'type': 'keyword'},
    # ... and by dotted path.
    'paths': {'type': 'keyword'},
    # "<path as JSON>:<sortable hex of the number>" of every numeric leaf.
    'nums': {'type': 'keyword'},
    # Every scalar, lower-cased, one token per character: a substring is
    # a phrase (see text_tokens).
    'text': {'type': 'text', 'analyzer': 'whitespace', 'norms': False,
             'index_options': 'positions'},
}


def index_settings(number_of_shards, number_of_replicas):
    return {'number_of_shards': number_of_shards,
            'number_of_replicas': number_of_replicas}


def kind_mapping(kind):
    """The mapping of the typed copy of one kind."""
    return {kind: KIND_PROPERTIES[kind]}


def mappings(kinds=base.KINDS, full=True):
    """The index mappings: internal fields plus the typed copy of ``kinds``.

    ``full`` adds what only index creation may set (``_source``).
    """
    properties = dict(INTERNAL_FIELDS)
    for kind in kinds:
        properties.update(kind_mapping(kind))
    body = {
        'dynamic': 'strict',
        '_meta': {'freezer_api_schema': SCHEMA_VERSION},
        'properties': properties,
    }
    if full:
        body['_source'] = {'excludes': list(INDEX_FIELDS)
                           + list(base.KINDS)}
    return body


# -- the search index ---------------------------------------------------------

# The index forms: one set of rules for both engines (storage.terms).
term_form = terms.es_term
number_form = terms.es_number
number_bounds = terms.es_number_bounds
text_tokens = terms.es_text
search_fields = terms.es_fields


# -- the typed copy -----------------------------------------------------------

def _typed_scalar(value, spec):
    kind = spec.get('type')
    if kind == 'keyword':
        return value if isinstance(value, str) else None
    if kind == 'text':
        return value if isinstance(value, str) else None
    if kind == 'boolean':
        return value if isinstance(value, bool) else None
    if kind == 'long':
        if (isinstance(value, int) and not isinstance(value, bool)
                and _LONG_MIN <= value <= _LONG_MAX):
            return value
        return None
    return None


def _typed(value, spec):
    if 'properties' in spec:
        if isinstance(value, dict):
            out = {}
            for name, sub in spec['properties'].items():
                if name in value:
                    typed = _typed(value[name], sub)
                    if typed is not None:
                        out[name] = typed
            return out or None
        if isinstance(value, list):
            items = [_typed(item, spec) for item in value
                     if isinstance(item, dict)]
            items = [item for item in items if item is not None]
            return items or None
        return None
    if isinstance(value, list):
        items = [_typed_scalar(item, spec) for item in value]
        items = [item for item in items if item is not None]
        return items or None
    return _typed_scalar(value, spec)


def typed_fields(kind, doc):
    """The typed copy of ``doc``: values of the wrong type are left out,
    so that no document can ever be refused by the mapping."""
    return _typed(doc, KIND_PROPERTIES[kind]) or {}
