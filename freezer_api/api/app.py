"""The Falcon application factory: the composition of the HTTP layer."""

import time

import falcon

from freezer_api import policies
from freezer_api.api import audit as audit_api
from freezer_api.api import errors
from freezer_api.api import metrics
from freezer_api.api import middleware
from freezer_api.api import routes
from freezer_api.core import audit
from freezer_api.core import base
from freezer_api.core.runs import HealthSettings
from freezer_api.core.service import Services


def create_app(conf, storage, enforcer=None, clock=time.time,
               new_id=base.new_hex_id, trusts=None, notifications=None):
    """Build the API over ``storage``; nothing else is read or started.

    The caller's identity must be put in the environ by one of the
    middlewares of ``freezer_api.api.context``. ``trusts`` (see
    ``freezer_api.identity.trusts``) turns central schedulers on.
    ``notifications`` (``freezer_api.notifications``) is told of every
    committed change.
    """
    # every write through the API leaves an audit record (core/audit.py)
    storage = audit.AuditedStorage(
        storage, clock=clock,
        on_commit=notifications and notifications.committed)
    services = Services(storage, clock=clock, new_id=new_id, trusts=trusts,
                        default_timezone=conf.default_schedule_timezone,
                        health=health_settings(conf),
                        presence_flush_interval=(
                            conf.health.presence_flush_interval),
                        sweep_interval=conf.health.sweep_interval)
    if enforcer is None:
        enforcer = policies.CachedEnforcer(policies.get_enforcer(conf))
    # the backup-health figures: every project's coverage (issue 15)
    recorded = metrics.from_conf(
        conf, storage, enforcer,
        health=lambda: services.coverage.figures(base.Scope(None)))
    app = falcon.App(middleware=(
        *metrics.middleware(recorded),
        middleware.DrainBody(max(middleware.DRAIN_LIMIT,
                                 2 * conf.api.max_request_body_size)),
        middleware.RequireJSON(),
        middleware.CallerScope(enforcer),
        middleware.StartInProcess(services.sweeper.ensure_running),
        audit_api.AuditActor()))
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.secure_cookies_by_default = True
    errors.register(app)
    routes.add_routes(app, services, conf)
    metrics.add_route(app, recorded)
    return app


def health_settings(conf) -> HealthSettings:
    """The [health] options as the core takes them (issue 15)."""
    opts = conf.health
    return HealthSettings(
        retention_days=opts.run_retention_days,
        default_lease=opts.default_run_lease,
        missed_grace=opts.missed_grace,
        missed_grace_percent=opts.missed_grace_percent,
        offline_after=opts.client_offline_after)
