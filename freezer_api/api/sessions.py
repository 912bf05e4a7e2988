"""/sessions, their start/end actions and their member jobs."""

import falcon

from freezer_api.api import request
from freezer_api.api.resource import Resource


class SessionCollection(Resource):
    policies = {'GET': 'sessions:get_all', 'POST': 'sessions:create'}

    def on_get(self, req, resp):
        records = self.services.sessions.list(
            req.context.scope, self.body(req), request.page(req))
        self.render_list(resp, 'sessions', records)

    def on_post(self, req, resp):
        session_id = self.services.sessions.create(req.context.owner,
                                                   self.body(req))
        resp.status = falcon.HTTP_201
        resp.media = {'session_id': session_id}


class SessionItem(Resource):
    policies = {'GET': 'sessions:get', 'POST': 'sessions:replace',
                'PATCH': 'sessions:update', 'DELETE': 'sessions:delete'}

    def on_get(self, req, resp, session_id):
        record = self.services.sessions.get(req.context.scope, session_id)
        self.render_document(resp, record)

    def on_post(self, req, resp, session_id):
        record = self.services.sessions.replace(
            req.context.owner, req.context.scope, session_id,
            self.body(req), request.expected_version(req))
        self.render_write(resp, 'session_id', record, falcon.HTTP_201)

    def on_patch(self, req, resp, session_id):
        record = self.services.sessions.update(
            req.context.scope, session_id, self.body(req),
            request.expected_version(req))
        self.render_write(resp, 'session_id', record)

    def on_delete(self, req, resp, session_id):
        self.services.sessions.delete(req.context.scope, session_id)
        resp.status = falcon.HTTP_204


class SessionAction(Resource):
    policies = {'POST': 'sessions:action:create'}

    def on_post(self, req, resp, session_id):
        resp.media = self.services.sessions.action(
            req.context.scope, session_id, self.body(req))
        resp.status = falcon.HTTP_202


class SessionJob(Resource):
    policies = {'PUT': 'sessions:job:add', 'DELETE': 'sessions:job:remove'}

    def on_put(self, req, resp, session_id, job_id):
        self.services.sessions.add_job(req.context.scope, session_id,
                                       job_id)
        resp.status = falcon.HTTP_204

    def on_delete(self, req, resp, session_id, job_id):
        self.services.sessions.remove_job(req.context.scope, session_id,
                                          job_id)
        resp.status = falcon.HTTP_204
