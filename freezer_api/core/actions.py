"""Reusable action definitions, also kept for every job action (§2.4, D11)."""

from freezer_api.core import base
from freezer_api.core import schemas
from freezer_api.core.errors import Conflict
from freezer_api.core.errors import Unprocessable
from freezer_api.core.merge import json_copy
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import Scope

ACTION_IDS = ('action_id', 'user_id', 'project_id')
# What a job action given by reference takes from the action, unless the
# job action sets it itself.
RETRY_FIELDS = ('max_retries', 'max_retries_interval', 'mandatory')


class ActionManager(base.Manager):
    kind = 'actions'
    not_found = 'No action found with ID {}'

    def _document(self, body, action_id, project_id, user_id):
        return {**body, 'action_id': action_id, 'user_id': user_id,
                'project_id': project_id}

    def create(self, caller: base.Caller, body) -> str:
        """Store an action; a given ``action_id`` is kept unless taken."""
        body = base.without(base.require_object(body), base.SERVER_FIELDS)
        schemas.validate(schemas.ACTION, body)
        action_id = body.get('action_id') or self.new_id()
        owner = caller.owner
        doc = self._document(body, action_id, owner.project_id,
                             owner.user_id)
        try:
            self.storage.create(self.kind, action_id, owner.project_id,
                                owner.user_id, self.created_at(), doc)
        except storage_errors.Conflict:
            raise Conflict(f'Action ID {action_id} is already in use')
        return action_id

    def replace(self, caller: base.Caller, action_id, body,
                expected_version=None):
        """Create or fully replace the action ``action_id``."""
        base.check_id(action_id, 'action_id')
        body = base.without(base.require_object(body),
                            ('action_id',) + base.SERVER_FIELDS)
        schemas.validate(schemas.ACTION, body)
        owner = caller.owner
        return self.upsert(
            caller, action_id,
            lambda txn: self._document(body, action_id, owner.project_id,
                                       owner.user_id),
            lambda txn, record: self._document(
                body, action_id, record.project_id, record.user_id),
            expected_version)

    def update(self, caller, action_id, body, expected_version=None):
        """Deep-merge ``body`` into the action."""
        patch = base.without(base.require_object(body),
                             ACTION_IDS + base.SERVER_FIELDS)
        schemas.validate(schemas.ACTION_PATCH, patch)
        return self.merge(caller, action_id, patch, schemas.ACTION,
                          expected_version)

    def resolve_references(self, txn, caller: base.Caller, job_actions):
        """Fill in the job actions given by ``action_id`` alone (D11).

        Such an entry gets the action's current ``freezer_action`` and,
        unless it sets them, its retry fields; it keeps the ``action_id``.
        Returns the positions of those entries. An id the caller cannot
        see is refused exactly as an id that does not exist.
        """
        referenced = set()
        for index, entry in enumerate(job_actions):
            if 'freezer_action' in entry:
                continue
            action_id = entry['action_id']
            record = txn.get(self.kind, action_id, caller.scope)
            if record is None or not isinstance(
                    record.doc.get('freezer_action'), dict):
                raise Unprocessable(
                    f'job_actions/{index}: no action found with ID '
                    f'{action_id}')
            entry['freezer_action'] = json_copy(
                record.doc['freezer_action'])
            for field in RETRY_FIELDS:
                if field not in entry and field in record.doc:
                    entry[field] = record.doc[field]
            referenced.add(index)
        return referenced

    def keep_job_actions(self, txn, caller: base.Caller, job_actions,
                         referenced=frozenset()):
        """Store each job action as an action document (spec D11).

        Runs inside the job's transaction, after the job validated. Each
        entry gains ``action_id``, ``user_id`` and ``project_id``. An entry
        whose ``action_id`` names an identical action of the caller reuses
        it; one that names a different action, or an action the caller
        does not own, gets a new id, so nobody's document is overwritten.
        Entries at the ``referenced`` positions were filled in from the
        action they name, which exists already: they keep its id.
        """
        owner, scope = caller.owner, caller.scope
        kept: dict[str, dict] = {}
        for index, entry in enumerate(job_actions):
            content = base.without(entry, ACTION_IDS)
            action_id = entry.get('action_id')
            if index in referenced:
                pass
            elif action_id in kept and kept[action_id] == comparable(
                    content):
                pass
            elif action_id and self._reusable(txn, scope, action_id,
                                              content):
                kept[action_id] = comparable(content)
            else:
                if not action_id or action_id in kept or txn.get(
                        self.kind, action_id, Scope(None)) is not None:
                    action_id = self.new_id()
                txn.insert(self.kind, action_id, owner.project_id,
                           owner.user_id, self.created_at(),
                           self._document(content, action_id,
                                          owner.project_id, owner.user_id))
                kept[action_id] = comparable(content)
            entry.update(action_id=action_id, user_id=owner.user_id,
                         project_id=owner.project_id)
        return job_actions

    def _reusable(self, txn, scope, action_id, content):
        record = txn.get(self.kind, action_id, scope)
        return (record is not None and comparable(
            base.without(record.doc, ACTION_IDS)) == comparable(content))


def comparable(content):
    """What makes two actions the same: not the ``_version`` a read
    returned, nor the keys of ``freezer_action`` set to null (not set).

    NOTE: the web UI builds a job from the actions it read, with their
    ``_version`` and with null for the fields they lack; that is still the
    same action, not a new one (freezer-web-ui 19.0.0).
    """
    content = base.without(content, ('_version',))
    action = content.get('freezer_action')
    if isinstance(action, dict):
        content['freezer_action'] = {key: value for key, value in
                                     action.items() if value is not None}
    return content
