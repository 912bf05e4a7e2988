"""The audit trail over HTTP: who the writes of a request are recorded as,
and ``GET /v2/{project_id}/audit`` (read only: other methods get 405)."""

import falcon

from freezer_api.api import filters
from freezer_api.api import request
from freezer_api.api import resource
from freezer_api.core import audit
from freezer_api.core.errors import InvalidInput

# The methods whose writes are recorded; reads write nothing.
WRITE_METHODS = frozenset({'POST', 'PUT', 'PATCH', 'DELETE'})


class AuditActor:
    """Falcon middleware, after ``CallerScope``: the writes a responder
    makes are recorded as the identified caller's, on the route's
    template, with the request id."""

    def process_resource(self, req, resp, resource, params):
        if req.method not in WRITE_METHODS:
            return
        identity = getattr(req.context, 'identity', None)
        if identity is None:
            return  # public resource or refused: nothing is written
        actor = audit.Actor(
            user_id=identity.user_id,
            project_id=identity.project_id,
            roles=tuple(identity.roles or ()),
            method=req.method,
            route=req.uri_template or req.path,
            request_id=req.env.get(filters.ENV_REQUEST_ID))
        req.context.audit_token = audit.bind(actor)

    def process_response(self, req, resp, resource, req_succeeded):
        token = req.context.get('audit_token')
        if token is not None:
            audit.unbind(token)
            req.context.audit_token = None


class AuditTrail(resource.Resource):
    """The audit records of the URL's project, oldest first.

    ``limit``/``offset`` page; ``since``/``until`` (seconds since the epoch
    or ISO 8601) keep ``since <= time < until``; ``all_projects=true``
    lists every project's, by time (policy ``audit:get_all_projects``).
    """

    policies = {'GET': 'audit:get_all'}

    def on_get(self, req, resp):
        caller = req.context.caller
        project_id = caller.scope.project_id
        if request.bool_param(req, 'all_projects'):
            self.require(req, 'audit:get_all_projects',
                         'You are not allowed to read the audit trail of '
                         'all projects')
            project_id = None
        page = request.page(req)
        records = self.services.audit.list(
            project_id,
            audit.parse_time(_single(req, 'since'), 'since'),
            audit.parse_time(_single(req, 'until'), 'until'),
            page.limit, page.offset)
        resp.status = falcon.HTTP_200
        resp.media = {'audit': records}


def _single(req, name):
    value = req.params.get(name)
    if isinstance(value, list):
        raise InvalidInput(f'{name} must be given once')
    return value
