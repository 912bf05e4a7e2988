"""The Falcon application factory: the composition of the HTTP layer."""

import time

import falcon

from freezer_api import policies
from freezer_api.api import audit as audit_api
from freezer_api.api import errors
from freezer_api.api import middleware
from freezer_api.api import routes
from freezer_api.core import audit
from freezer_api.core import base
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
                        default_timezone=conf.default_schedule_timezone)
    if enforcer is None:
        enforcer = policies.CachedEnforcer(policies.get_enforcer(conf))
    app = falcon.App(middleware=(
        middleware.DrainBody(max(middleware.DRAIN_LIMIT,
                                 2 * conf.api.max_request_body_size)),
        middleware.RequireJSON(),
        middleware.CallerScope(enforcer),
        audit_api.AuditActor()))
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.secure_cookies_by_default = True
    errors.register(app)
    routes.add_routes(app, services, conf)
    return app
