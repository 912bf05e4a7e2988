"""/actions: reusable action definitions (the web UI builds jobs of them)."""

import falcon

from freezer_api.api import request
from freezer_api.api.resource import Resource


class ActionCollection(Resource):
    policies = {'GET': 'actions:get_all', 'POST': 'actions:create'}

    def on_get(self, req, resp):
        records = self.services.actions.list(
            req.context.scope, self.body(req), request.page(req))
        self.render_list(resp, 'actions', records)

    def on_post(self, req, resp):
        action_id = self.services.actions.create(req.context.owner,
                                                 self.body(req))
        resp.status = falcon.HTTP_201
        resp.media = {'action_id': action_id}


class ActionItem(Resource):
    policies = {'GET': 'actions:get', 'POST': 'actions:replace',
                'PATCH': 'actions:update', 'DELETE': 'actions:delete'}

    def on_get(self, req, resp, action_id):
        record = self.services.actions.get(req.context.scope, action_id)
        self.render_document(resp, record)

    def on_post(self, req, resp, action_id):
        record = self.services.actions.replace(
            req.context.owner, req.context.scope, action_id, self.body(req),
            request.expected_version(req))
        self.render_write(resp, 'action_id', record, falcon.HTTP_201)

    def on_patch(self, req, resp, action_id):
        record = self.services.actions.update(
            req.context.scope, action_id, self.body(req),
            request.expected_version(req))
        self.render_write(resp, 'action_id', record)

    def on_delete(self, req, resp, action_id):
        self.services.actions.delete(req.context.scope, action_id)
        resp.status = falcon.HTTP_204
