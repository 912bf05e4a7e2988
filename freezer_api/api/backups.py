"""/backups: metadata posted by agents after each run."""

import falcon

from freezer_api.api import request
from freezer_api.api.resource import Resource


class BackupCollection(Resource):
    policies = {'GET': 'backups:get_all', 'POST': 'backups:create'}

    def on_get(self, req, resp):
        records = self.services.backups.list(
            req.context.scope, self.body(req), request.page(req))
        self.render_list(resp, 'backups', records)

    def on_post(self, req, resp):
        backup_id = self.services.backups.create(req.context.owner,
                                                 self.body(req))
        resp.status = falcon.HTTP_201
        resp.media = {'backup_id': backup_id}


class BackupItem(Resource):
    policies = {'GET': 'backups:get', 'PATCH': 'backups:update',
                'DELETE': 'backups:delete'}

    def on_get(self, req, resp, backup_id):
        record = self.services.backups.get(req.context.scope, backup_id)
        self.render_document(resp, record)

    def on_patch(self, req, resp, backup_id):
        record = self.services.backups.update(
            req.context.scope, backup_id, self.body(req),
            request.expected_version(req))
        self.render_write(resp, 'backup_id', record)

    def on_delete(self, req, resp, backup_id):
        self.services.backups.delete(req.context.scope, backup_id)
        resp.status = falcon.HTTP_204
