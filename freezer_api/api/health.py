"""Backup health (issue 15): ``/jobs/{id}/runs``, the run ledger of a job,
and ``/coverage``, the operator's overview."""

import dataclasses

import falcon

from freezer_api.api import request
from freezer_api.api import resource
from freezer_api.core import base
from freezer_api.core.errors import InvalidInput
from freezer_api.storage.base import Scope


def _text_param(req, name):
    value = req.params.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        raise InvalidInput(f'{name} must be given once')
    return value


class JobRuns(resource.Resource):
    """``GET``: the job's runs, newest first; search document as body,
    ``limit`` and ``offset`` as for every list."""

    policies = {'GET': 'jobs:runs:get'}

    def on_get(self, req, resp, job_id):
        records = self.services.runs.job_runs(
            req.context.caller, job_id, self.body(req), request.page(req))
        resp.content_type = falcon.MEDIA_JSON
        resp.media = {'runs': [record.doc for record in records]}


class Coverage(resource.Resource):
    """``GET``: per client and per job, the newest good backup against the
    RPO, missed and stale runs. An optional search document (the body)
    and ``breached``, ``client_id``, ``job_id`` choose the jobs;
    ``limit`` and ``offset`` page them (every job by default);
    ``all_projects`` widens (policy)."""

    policies = {'GET': 'coverage:get'}

    def on_get(self, req, resp):
        caller = req.context.caller
        if request.bool_param(req, 'all_projects'):
            self.require(req, 'coverage:get_all_projects',
                         'You are not allowed to read the coverage of all '
                         'projects')
            caller = dataclasses.replace(caller, scope=Scope(None))
        page = request.page(req)
        if 'limit' not in req.params:
            # NOTE: the operator's page shows every job unless asked
            page = dataclasses.replace(page, limit=base.MAX_LIMIT)
        resp.media = self.services.coverage.coverage(
            caller, self.body(req), page,
            breached_only=request.bool_param(req, 'breached'),
            client_id=_text_param(req, 'client_id'),
            job_id=_text_param(req, 'job_id'))
