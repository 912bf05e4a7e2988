"""/sessions, their start/end actions and their member jobs."""

import falcon

from freezer_api.api import resource
from freezer_api.core.sessions import with_defaults


class _SessionShape:
    def present(self, req, doc):
        return with_defaults(doc)


class SessionCollection(_SessionShape, resource.Collection):
    noun, id_field = 'sessions', 'session_id'
    policies = {'GET': 'sessions:get_all', 'POST': 'sessions:create'}


class SessionItem(_SessionShape, resource.ReplaceableItem):
    noun, id_field = 'sessions', 'session_id'
    policies = {'GET': 'sessions:get', 'POST': 'sessions:replace',
                'PATCH': 'sessions:update', 'DELETE': 'sessions:delete'}


class SessionAction(resource.Resource):
    policies = {'POST': 'sessions:action:create'}

    def on_post(self, req, resp, session_id):
        resp.media = self.services.sessions.action(
            req.context.caller, session_id, self.body(req))
        resp.status = falcon.HTTP_202


class SessionJob(resource.Resource):
    policies = {'PUT': 'sessions:job:add', 'DELETE': 'sessions:job:remove'}

    def on_put(self, req, resp, session_id, job_id):
        self.services.sessions.add_job(req.context.caller, session_id,
                                       job_id)
        resp.status = falcon.HTTP_204

    def on_delete(self, req, resp, session_id, job_id):
        self.services.sessions.remove_job(req.context.caller, session_id,
                                          job_id)
        resp.status = falcon.HTTP_204
