"""Registered scheduler nodes (spec §2.2, D12)."""

from freezer_api.core import base
from freezer_api.core import schemas
from freezer_api.core.errors import Conflict
from freezer_api.core.errors import InvalidInput
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import Scope


def _unwrap(body):
    # NOTE: the API takes client_info bare, but a client that read a stored
    # document may send it back wrapped in "client"; accept both.
    if set(body) == {'client'} and isinstance(body['client'], dict):
        return body['client']
    return body


class ClientManager(base.Manager):
    kind = 'clients'
    not_found = 'No client found with ID {}'

    def create(self, caller: base.Caller, body) -> str:
        """Register a client; its ``client_id`` is unique in the project."""
        info = base.without(_unwrap(base.require_object(body)),
                            base.SERVER_FIELDS)
        schemas.validate('CLIENT', info)
        if info.get('is_central'):
            # NOTE: central schedulers need Keystone trusts; until that is
            # built, refuse rather than store a flag nothing honours.
            raise InvalidInput('is_central clients are not supported')
        info.setdefault('uuid', self.new_id())
        client_id = info['client_id']
        owner = caller.owner
        doc = {'client': info, 'user_id': owner.user_id,
               'project_id': owner.project_id}
        try:
            self.storage.create(self.kind, client_id, owner.project_id,
                                owner.user_id, self.created_at(), doc)
        except storage_errors.Conflict:
            raise Conflict(f'Client already registered with ID {client_id}')
        return client_id

    def update(self, caller, client_id, body, expected_version=None):
        """Change hostname, description or the supported_* lists."""
        # NOTE: ids are ignored, not refused, as in every PATCH (spec D6).
        patch = base.without(_unwrap(base.require_object(body)),
                             ('client_id', 'uuid') + base.SERVER_FIELDS)
        schemas.validate('CLIENT_PATCH', patch)

        def change(txn):
            record = self.load(txn, caller.scope, client_id,
                               expected_version)
            doc = dict(record.doc)
            doc['client'] = {**doc['client'], **patch}
            return txn.update(record, doc)

        return self.storage.atomic(change)

    def find_in_project(self, txn, project_id, client_id):
        return txn.get(self.kind, client_id, Scope(project_id))
