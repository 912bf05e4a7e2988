"""Who is calling: the request context built by the auth middlewares.

Handlers never read identity headers. A WSGI middleware in front of the app
puts an oslo.context ``RequestContext`` into the environ under
``ENVIRON_KEY``:

* ``NoAuthMiddleware`` (auth_strategy = noauth) trusts ``X-User-Id``,
  ``X-Project-Id`` and ``X-Roles``, else an ``X-Auth-Token`` of the form
  ``user_id:project_id``, else the configured ``[noauth]`` identity;
* ``KeystoneContextMiddleware`` (auth_strategy = keystone) reads only what
  keystonemiddleware's auth_token validated.
"""

import logging

from oslo_context import context

LOG = logging.getLogger(__name__)

ENVIRON_KEY = 'freezer.context'


def _header(environ, name):
    """The stripped header value; '' when sent empty, None when absent."""
    value = environ.get('HTTP_' + name.upper().replace('-', '_'))
    return None if value is None else value.strip()


def _roles(value):
    return [role.strip().lower() for role in value.split(',')
            if role.strip()]


class NoAuthMiddleware:
    """Identity from headers or configuration; for tests and labs only."""

    def __init__(self, app, conf):
        self.app = app
        self.conf = conf

    def _identity(self, environ):
        defaults = self.conf.noauth
        user_id = _header(environ, 'X-User-Id') or None
        project_id = (_header(environ, 'X-Project-Id')
                      or _header(environ, 'X-Tenant-Id') or None)
        token = _header(environ, 'X-Auth-Token') or ''
        if ':' in token:
            token_user, _, token_project = token.partition(':')
            user_id = user_id or token_user or None
            project_id = project_id or token_project or None
        # NOTE: an empty X-Roles header means "no roles"; only an absent
        # one falls back to the configured roles.
        roles = _header(environ, 'X-Roles')
        return context.RequestContext(
            user_id=user_id or defaults.user_id,
            user_name=(_header(environ, 'X-User-Name') or
                       user_id or defaults.user_name),
            project_id=project_id or defaults.project_id,
            roles=_roles(roles) if roles is not None else list(
                defaults.roles),
            request_id=environ.get('openstack.request_id'),
            overwrite=False)

    def __call__(self, environ, start_response):
        environ[ENVIRON_KEY] = self._identity(environ)
        return self.app(environ, start_response)


class KeystoneContextMiddleware:
    """Identity from the headers keystonemiddleware's auth_token set."""

    def __init__(self, app, conf):
        self.app = app
        self.conf = conf

    def __call__(self, environ, start_response):
        environ.pop(ENVIRON_KEY, None)
        if environ.get('HTTP_X_IDENTITY_STATUS') == 'Confirmed':
            ctx = context.RequestContext.from_environ(environ,
                                                      overwrite=False)
            ctx.roles = [role.lower() for role in ctx.roles]
            environ[ENVIRON_KEY] = ctx
        return self.app(environ, start_response)
