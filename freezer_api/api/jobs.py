"""/jobs: what each scheduler runs, and /jobs/{id}/event."""

import falcon

from freezer_api.api import request
from freezer_api.api.resource import Resource
from freezer_api.storage.base import Scope


class JobCollection(Resource):
    policies = {'GET': 'jobs:get_all', 'POST': 'jobs:create'}

    def on_get(self, req, resp):
        scope = req.context.scope
        if request.bool_param(req, 'all_projects'):
            # honoured only when the policy allows it (spec §1.4, D16)
            self._check_all_projects(req)
            scope = Scope(None)
        records = self.services.jobs.list(scope, self.body(req),
                                          request.page(req))
        self.render_list(resp, 'jobs', records)

    def _check_all_projects(self, req):
        enforcer = req.context.enforcer
        target = {'project_id': req.context.scope.project_id}
        if not enforcer.enforce('jobs:get_all_projects', target,
                                req.context.identity):
            raise falcon.HTTPForbidden(
                title='Access Forbidden',
                description='You are not allowed to list the jobs of all '
                            'projects')

    def on_post(self, req, resp):
        job_id = self.services.jobs.create(
            req.context.owner, req.context.scope, self.body(req))
        resp.status = falcon.HTTP_201
        resp.media = {'job_id': job_id}


class JobItem(Resource):
    policies = {'GET': 'jobs:get', 'POST': 'jobs:create',
                'PATCH': 'jobs:update', 'DELETE': 'jobs:delete'}

    def on_get(self, req, resp, job_id):
        record = self.services.jobs.get(req.context.scope, job_id)
        self.render_document(resp, record)

    def on_post(self, req, resp, job_id):
        record = self.services.jobs.replace(
            req.context.owner, req.context.scope, job_id, self.body(req),
            request.expected_version(req))
        self.render_write(resp, 'job_id', record, falcon.HTTP_201)

    def on_patch(self, req, resp, job_id):
        record = self.services.jobs.update(
            req.context.owner, req.context.scope, job_id, self.body(req),
            request.expected_version(req))
        self.render_write(resp, 'job_id', record)

    def on_delete(self, req, resp, job_id):
        self.services.jobs.delete(req.context.scope, job_id)
        resp.status = falcon.HTTP_204


class JobEvent(Resource):
    policies = {'POST': 'jobs:event:create'}

    def on_post(self, req, resp, job_id):
        result = self.services.jobs.event(req.context.scope, job_id,
                                          self.body(req))
        resp.status = falcon.HTTP_202
        resp.media = {'result': result}
