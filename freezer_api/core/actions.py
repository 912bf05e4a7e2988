"""Reusable action definitions, also kept for every job action (§2.4, D11)."""

from freezer_api.core import base
from freezer_api.core import schemas
from freezer_api.core.errors import Conflict
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import Scope

ACTION_IDS = ('action_id', 'user_id', 'project_id')


class ActionManager(base.Manager):
    kind = 'actions'
    not_found = 'No action found with ID {}'

    def _document(self, body, action_id, project_id, user_id):
        return {**body, 'action_id': action_id, 'user_id': user_id,
                'project_id': project_id}

    def create(self, caller: base.Caller, body) -> str:
        """Store an action; a given ``action_id`` is kept unless taken."""
        body = base.without(base.require_object(body), base.SERVER_FIELDS)
        schemas.validate('ACTION', body)
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
        schemas.validate('ACTION', body)
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
        schemas.validate('ACTION_PATCH', patch)
        return self.merge(caller, action_id, patch, 'ACTION',
                          expected_version)

    def keep_job_actions(self, txn, caller: base.Caller, job_actions):
        """Store each job action as an action document (spec D11).

        Runs inside the job's transaction, after the job validated. Each
        entry gains ``action_id``, ``user_id`` and ``project_id``. An entry
        whose ``action_id`` names an identical action of the caller reuses
        it; one that names a different action, or an action the caller
        does not own, gets a new id, so nobody's document is overwritten.
        """
        owner, scope = caller.owner, caller.scope
        kept: dict[str, dict] = {}
        for entry in job_actions:
            content = base.without(entry, ACTION_IDS)
            action_id = entry.get('action_id')
            if action_id in kept and kept[action_id] == content:
                pass
            elif action_id and self._reusable(txn, scope, action_id,
                                              content):
                kept[action_id] = content
            else:
                if not action_id or action_id in kept or txn.get(
                        self.kind, action_id, Scope(None)) is not None:
                    action_id = self.new_id()
                txn.insert(self.kind, action_id, owner.project_id,
                           owner.user_id, self.created_at(),
                           self._document(content, action_id,
                                          owner.project_id, owner.user_id))
                kept[action_id] = content
            entry.update(action_id=action_id, user_id=owner.user_id,
                         project_id=owner.project_id)
        return job_actions

    def _reusable(self, txn, scope, action_id, content):
        record = txn.get(self.kind, action_id, scope)
        return (record is not None
                and base.without(record.doc, ACTION_IDS) == content)
