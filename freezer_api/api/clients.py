"""/clients: scheduler nodes registered by freezer-scheduler."""

import falcon

from freezer_api.api import request
from freezer_api.api.resource import Resource


class ClientCollection(Resource):
    policies = {'GET': 'clients:get_all', 'POST': 'clients:create'}

    def on_get(self, req, resp):
        records = self.services.clients.list(
            req.context.scope, self.body(req), request.page(req))
        self.render_list(resp, 'clients', records)

    def on_post(self, req, resp):
        client_id = self.services.clients.create(req.context.owner,
                                                 self.body(req))
        resp.status = falcon.HTTP_201
        resp.media = {'client_id': client_id}


class ClientItem(Resource):
    policies = {'GET': 'clients:get', 'PATCH': 'clients:update',
                'DELETE': 'clients:delete'}

    def on_get(self, req, resp, client_id):
        record = self.services.clients.get(req.context.scope, client_id)
        self.render_document(resp, record)

    def on_patch(self, req, resp, client_id):
        record = self.services.clients.update(
            req.context.scope, client_id, self.body(req),
            request.expected_version(req))
        self.render_write(resp, 'client_id', record)

    def on_delete(self, req, resp, client_id):
        self.services.clients.delete(req.context.scope, client_id)
        resp.status = falcon.HTTP_204
