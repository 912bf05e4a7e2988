"""Backup metadata records posted by agents after each run (spec §2.1)."""

from freezer_api.core import base
from freezer_api.core import schemas


# Optional metadata fields typed as numbers, booleans or lists.
_TYPED_OPTIONAL = frozenset(
    name for name, rule in schemas.BACKUP_METADATA['properties'].items()
    if isinstance(rule.get('type'), list) and 'null' in rule['type']
    and 'string' not in rule['type'])


def unset_empty_strings(body: dict) -> dict:
    """freezer-agent writes options it was not given as "" (for instance
    ``"max_level": ""``); in a typed field that means unset: null."""
    return {key: None if value == '' and key in _TYPED_OPTIONAL else value
            for key, value in body.items()}


class BackupManager(base.Manager):
    kind = 'backups'
    not_found = 'No backup found with ID {}'

    def create(self, caller: base.Caller, body) -> str:
        """Store the metadata ``body`` as a new backup; return its id."""
        body = unset_empty_strings(base.require_object(body,
                                                       'backup metadata'))
        schemas.validate('BACKUP_METADATA', body)
        backup_id = self.new_id()
        owner = caller.owner
        doc = {
            'backup_id': backup_id,
            'user_id': owner.user_id,
            'user_name': owner.user_name,
            'project_id': owner.project_id,
            'backup_metadata': body,
        }
        self.storage.create(self.kind, backup_id, owner.project_id,
                            owner.user_id, self.created_at(), doc)
        return backup_id

    def update(self, caller, backup_id, body, expected_version=None):
        """Set the backup's ``status`` (the only mutable field)."""
        base.require_object(body)
        schemas.validate('BACKUP_PATCH', body)

        def change(txn):
            record = self.load(txn, caller.scope, backup_id,
                               expected_version)
            return txn.update(record, {**record.doc, **body})

        return self.storage.atomic(change)
