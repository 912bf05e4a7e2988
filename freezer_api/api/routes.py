"""The route table, mounted once per API version over the same resources.

v1 (``/v1``) is user-scoped and v2 (``/v2/{project_id}``) project-scoped;
``middleware.CallerScope`` derives the scope from the presence of the
``project_id`` path variable, so the resources are identical (spec D1).
"""

from freezer_api.api import actions
from freezer_api.api import audit
from freezer_api.api import backups
from freezer_api.api import clients
from freezer_api.api import health
from freezer_api.api import jobs
from freezer_api.api import openapi
from freezer_api.api import sessions
from freezer_api.api import versions

V1_PREFIX = '/v1'
V2_PREFIX = '/v2/{project_id}'


def resource_routes(services, conf):
    """``(template, resource)`` pairs below a version prefix."""
    def make(cls):
        return cls(services, conf)

    return [
        ('/backups', make(backups.BackupCollection)),
        ('/backups/{backup_id}', make(backups.BackupItem)),
        ('/clients', make(clients.ClientCollection)),
        ('/clients/{client_id}', make(clients.ClientItem)),
        ('/jobs', make(jobs.JobCollection)),
        ('/jobs/{job_id}', make(jobs.JobItem)),
        ('/jobs/{job_id}/event', make(jobs.JobEvent)),
        ('/jobs/{job_id}/schedule', make(jobs.JobSchedule)),
        ('/jobs/{job_id}/runs', make(health.JobRuns)),
        ('/coverage', make(health.Coverage)),
        ('/actions', make(actions.ActionCollection)),
        ('/actions/{action_id}', make(actions.ActionItem)),
        ('/sessions', make(sessions.SessionCollection)),
        ('/sessions/{session_id}', make(sessions.SessionItem)),
        ('/sessions/{session_id}/action', make(sessions.SessionAction)),
        ('/sessions/{session_id}/jobs/{job_id}',
         make(sessions.SessionJob)),
    ]


def add_routes(app, services, conf):
    app.add_route('/', versions.Versions(services, conf))
    app.add_route('/healthcheck', versions.Health(services, conf))
    app.add_route(openapi.PATH, openapi.OpenAPIDocument(services, conf))
    mounted = []
    if conf.api.enable_v1_api:
        mounted.append(('/v1', V1_PREFIX))
    if conf.api.enable_v2_api:
        mounted.append(('/v2', V2_PREFIX))
    # NOTE: both versions share one set of resource objects.
    table = resource_routes(services, conf)
    for home, prefix in mounted:
        app.add_route(home, versions.HomeDocument(services, conf, prefix))
        for template, resource in table:
            app.add_route(prefix + template, resource)
    if conf.api.enable_v2_api:
        # v2 only: the audit trail is read per project, never per user
        app.add_route(V2_PREFIX + '/audit', audit.AuditTrail(services, conf))
