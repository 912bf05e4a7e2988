"""/backups: metadata posted by agents after each run."""

from freezer_api.api import resource


class BackupCollection(resource.Collection):
    noun, id_field = 'backups', 'backup_id'
    policies = {'GET': 'backups:get_all', 'POST': 'backups:create'}


class BackupItem(resource.Item):
    noun, id_field = 'backups', 'backup_id'
    policies = {'GET': 'backups:get', 'PATCH': 'backups:update',
                'DELETE': 'backups:delete'}
