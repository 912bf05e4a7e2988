"""/jobs: what each scheduler runs, /jobs/{id}/event and
/jobs/{id}/schedule."""

import dataclasses

import falcon

from freezer_api.api import request
from freezer_api.api import resource
from freezer_api.core import schedule as run_times
from freezer_api.storage.base import Scope


class JobCollection(resource.Collection):
    noun, id_field = 'jobs', 'job_id'
    policies = {'GET': 'jobs:get_all', 'POST': 'jobs:create'}

    def on_get(self, req, resp):
        caller = req.context.caller
        if request.bool_param(req, 'all_projects'):
            # honoured only when the policy allows it (spec §1.4, D16)
            self.require(req, 'jobs:get_all_projects',
                         'You are not allowed to list the jobs of all '
                         'projects')
            caller = dataclasses.replace(caller, scope=Scope(None))
        self.render_list(req, resp, caller)


class JobItem(resource.ReplaceableItem):
    noun, id_field = 'jobs', 'job_id'
    # NOTE: replace (POST) is checked as jobs:create, as upstream (§6.2).
    policies = {'GET': 'jobs:get', 'POST': 'jobs:create',
                'PATCH': 'jobs:update', 'DELETE': 'jobs:delete'}


class JobEvent(resource.Resource):
    policies = {'POST': 'jobs:event:create'}

    def on_post(self, req, resp, job_id):
        result = self.services.jobs.event(req.context.caller, job_id,
                                          self.body(req))
        resp.status = falcon.HTTP_202
        resp.media = {'result': result}


class JobSchedule(resource.Resource):
    """``GET``: the job's next run times as freezer-scheduler computes
    them, in UTC and in the job's time zone (core/schedule.py)."""

    policies = {'GET': 'jobs:schedule:get'}

    def on_get(self, req, resp, job_id):
        count = request.count_param(req, run_times.DEFAULT_COUNT)
        resp.media = self.services.jobs.next_runs(req.context.caller, job_id,
                                                  count)
