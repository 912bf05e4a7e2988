"""Backup metadata records posted by agents after each run (spec §2.1, D13)."""

import math
import re
from typing import Any

from freezer_api.core import base
from freezer_api.core import schemas
from freezer_api.core.errors import InvalidInput
from freezer_api.core.merge import deep_merge

DEFAULT_STATUS = 'available'

# Optional metadata fields typed as numbers, booleans or lists.
_TYPED_OPTIONAL = frozenset(
    name for name, rule in schemas.BACKUP_METADATA['properties'].items()
    if isinstance(rule.get('type'), list) and 'null' in rule['type']
    and 'string' not in rule['type'])

NUMERIC_FIELDS = frozenset(
    name for name, rule in schemas.BACKUP_METADATA['properties'].items()
    if isinstance(rule.get('type'), list) and 'number' in rule['type'])

# Stores index these fields as 64-bit integers (Elasticsearch long); a
# number beyond means nothing as a size, level or time anyway.
NUMBER_LIMIT = 2 ** 63 - 1
_NUMERIC_TEXT = re.compile(
    r'[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?')
_INTEGER_TEXT = re.compile(r'[+-]?[0-9]+')
# Longer numeric strings cannot be a size, level or time (and int() of a
# few thousand digits raises an error that names Python internals).
_MAX_NUMERIC_TEXT = 40

BACKUP_SERVER_FIELDS = ('backup_id',) + base.SERVER_FIELDS


def _number(field, value):
    """``value`` as the number it means, or InvalidInput."""
    def not_a_number():
        # NOTE: a short, plain quote of the value, whatever its size
        shown = (repr(value[:_MAX_NUMERIC_TEXT]) if isinstance(value, str)
                 else type(value).__name__.replace('dict', 'object')
                 .replace('list', 'array').replace('bool', 'boolean'))
        return InvalidInput(f'{field}: {shown} is not a number')

    out_of_range = InvalidInput(
        f'{field}: the number is out of range (at most {NUMBER_LIMIT} in '
        f'size)')
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise not_a_number()
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_NUMERIC_TEXT or not _NUMERIC_TEXT.fullmatch(
                text):
            raise not_a_number()
        value = int(text) if _INTEGER_TEXT.fullmatch(text) else float(text)
    if isinstance(value, float):
        if math.isnan(value):
            raise not_a_number()
        if math.isinf(value):
            raise out_of_range
        if value.is_integer():
            value = int(value)
    if abs(value) > NUMBER_LIMIT:
        raise out_of_range
    return value


def normalize(metadata: dict) -> dict:
    """The metadata with agents' type quirks read as they are meant.

    freezer-agent writes options it was not given as "" (for instance
    ``"max_level": ""``): in a typed field that means unset, null. Older
    agents and other tools send sizes and levels as floats or numeric
    strings: a numeric field keeps the number such a value means
    (``"10"`` -> 10, ``2.0`` -> 2, ``"1.5"`` -> 1.5), so no agent's record
    is refused for a type quirk; only values that cannot mean a number are.
    """
    out = {}
    for key, value in metadata.items():
        if value == '' and key in _TYPED_OPTIONAL:
            value = None
        elif key in NUMERIC_FIELDS and value is not None:
            value = _number(key, value)
        out[key] = value
    return out


def project_view(doc: dict) -> dict:
    """The backup as v2 (project-scoped) shows it: with ``status``, without
    ``user_name`` (upstream's current shape); v1 keeps the seed's shape."""
    shown = {key: value for key, value in doc.items() if key != 'user_name'}
    shown.setdefault('status', DEFAULT_STATUS)
    return shown


class BackupManager(base.Manager):
    kind = 'backups'
    not_found = 'No backup found with ID {}'
    # the run ledger (issue 15), set by core.service
    ledger: Any = None

    def create(self, caller: base.Caller, body) -> str:
        """Store the metadata ``body`` as a new backup; return its id."""
        body = normalize(base.require_object(body, 'backup metadata'))
        schemas.validate(schemas.BACKUP_METADATA, body)
        backup_id = self.new_id()
        owner = caller.owner
        doc = {
            'backup_id': backup_id,
            'user_id': owner.user_id,
            'user_name': owner.user_name,
            'project_id': owner.project_id,
            'status': DEFAULT_STATUS,
            'backup_metadata': body,
        }
        created_at = self.created_at()
        job_id = body.get('job_id')
        if self.ledger is None or not isinstance(job_id, str) or not job_id:
            self.storage.create(self.kind, backup_id, owner.project_id,
                                owner.user_id, created_at, doc)
            return backup_id
        ledger = self.ledger
        scope = base.project_scope(caller.scope)

        def change(txn):
            # Add the backup to the running run of the job that posted it
            # (issue 15); a backup naming no running job is linked to none.
            # PERF: in the backup's own transaction: a second one cost
            # about 0.5 ms of server CPU per create over HTTP (bench).
            txn.insert(self.kind, backup_id, owner.project_id,
                       owner.user_id, created_at, doc)
            job = txn.get('jobs', job_id, scope)
            ledger.backup_posted(txn, job and job.doc, backup_id)

        self.storage.atomic(change)
        return backup_id

    def update(self, caller, backup_id, body, expected_version=None):
        """Set ``status`` and deep-merge ``backup_metadata`` (spec D6, D13).

        The merged metadata must pass the rules of a new backup.
        """
        patch = base.without(base.require_object(body),
                             BACKUP_SERVER_FIELDS)
        schemas.validate(schemas.BACKUP_PATCH, patch)

        def change(txn):
            record = self.load(txn, caller.scope, backup_id,
                               expected_version)
            doc = dict(record.doc)
            if 'status' in patch:
                doc['status'] = patch['status']
            if 'backup_metadata' in patch:
                metadata = normalize(deep_merge(
                    doc.get('backup_metadata') or {},
                    patch['backup_metadata']))
                schemas.validate(schemas.BACKUP_METADATA, metadata)
                doc['backup_metadata'] = metadata
            if doc == record.doc:
                return record
            return txn.update(record, doc)

        return self.storage.atomic(change)
