"""/backups: metadata posted by agents after each run."""

from freezer_api.api import resource
from freezer_api.core import backups


class _BackupShape:
    def present(self, req, doc):
        # v2 shows upstream's current shape, v1 the seed's (spec D13)
        if req.context.api_version == 'v2':
            return backups.project_view(doc)
        return doc


class BackupCollection(_BackupShape, resource.Collection):
    noun, id_field = 'backups', 'backup_id'
    policies = {'GET': 'backups:get_all', 'POST': 'backups:create'}


class BackupItem(_BackupShape, resource.Item):
    noun, id_field = 'backups', 'backup_id'
    policies = {'GET': 'backups:get', 'PATCH': 'backups:update',
                'DELETE': 'backups:delete'}
