"""Falcon middleware: content negotiation, caller scope and policy."""

import logging
import re
from typing import cast

import falcon

from freezer_api.api import errors
from freezer_api.api.context import ENVIRON_KEY
from freezer_api.api.resource import ANY_CALLER
from freezer_api.core.base import Caller
from freezer_api.core.base import Owner
from freezer_api.core.schemas import ID_CHARS
from freezer_api.storage.base import Scope

LOG = logging.getLogger(__name__)

# Request bodies up to this size are read to the end even when refused
# (see DrainBody): 64 MiB take a fraction of a second to read.
DRAIN_LIMIT = 64 * 1024 * 1024

PROJECT_PATTERN = re.compile(rf'^{ID_CHARS}{{1,255}}$')


def has_responder(resource, method):
    """Whether ``resource`` answers ``method`` with a responder of its own."""
    return callable(getattr(resource, 'on_' + method.lower(), None))


class DrainBody:
    """Read the rest of the request body before the answer goes out.

    A server that answers (413, 400, 404...) and closes the connection
    with body bytes still unread makes the kernel reset it: the client,
    still sending, never sees the answer. Bodies up to ``limit`` bytes are
    read to the end (and thrown away); a larger announced body is not
    worth reading, and its connection is closed.
    """

    def __init__(self, limit):
        self.limit = limit

    def process_response(self, req, resp, resource, req_succeeded):
        length = req.content_length
        if not length:
            return
        if length > self.limit:
            resp.set_header('Connection', 'close')
            return
        try:
            req.bounded_stream.exhaust()
        except OSError as exc:
            # the client is gone: nothing will read the answer anyway
            LOG.debug('Client went away while its body was read: %s', exc)


class RequireJSON:
    """406 unless the caller accepts JSON or what the resource serves
    (``media_type``: JSON home on /v1 and /v2, text on /healthcheck)."""

    def process_resource(self, req, resp, resource, params):
        media_type = getattr(resource, 'media_type', falcon.MEDIA_JSON)
        if not (req.client_accepts_json or req.client_accepts(media_type)):
            raise falcon.HTTPNotAcceptable(
                description='This API only answers in JSON '
                            '(application/json).')


class CallerScope:
    """Decide, before each responder, whose documents the caller reaches.

    Resources declare ``policies = {method: rule}``; resources with
    ``public = True`` (versions, health) need no identity. A responder
    without a rule is denied (fail closed). The v2 URL
    ``project_id`` is removed from the responder arguments and must name
    the caller's project, unless the caller is an admin (spec D2).
    """

    def __init__(self, enforcer):
        self.enforcer = enforcer

    def process_resource(self, req, resp, resource, params):
        if resource is None or getattr(resource, 'public', False):
            return
        ctx = req.env.get(ENVIRON_KEY)
        if ctx is None or not ctx.user_id:
            # NOTE: keystonemiddleware adds WWW-Authenticate to this 401.
            raise falcon.HTTPUnauthorized(
                title='Unauthorized',
                description='Authentication is required.')
        url_project = params.pop('project_id', None)
        if url_project is None:
            # v1: documents of this user within the token's project
            if not ctx.project_id:
                raise errors.forbidden(
                    'The token is not scoped to a project.')
            scope = Scope(ctx.project_id, ctx.user_id)
        else:
            if not PROJECT_PATTERN.fullmatch(url_project):
                raise falcon.HTTPBadRequest(
                    title='Bad request format',
                    description='project_id must be letters, digits, "_" '
                                'or "-"')
            if url_project != ctx.project_id and not self.enforcer.enforce(
                    'context_is_admin', {}, ctx):
                raise errors.forbidden()
            scope = Scope(url_project)
        rule = resource.policies.get(req.method)
        if rule is None:
            if has_responder(resource, req.method):
                # NOTE: fail closed: a responder nobody wrote a rule for
                # is a bug, not a public operation.
                LOG.error('No policy rule for %s on %s: denied',
                          req.method, type(resource).__name__)
                raise errors.forbidden()
            # no responder: Falcon answers 405 (or OPTIONS) itself
        elif rule != ANY_CALLER:
            target = {'project_id': scope.project_id,
                      'user_id': ctx.user_id}
            if not self.enforcer.enforce(rule, target, ctx):
                raise errors.forbidden()
        req.context.identity = ctx
        req.context.enforcer = self.enforcer
        req.context.api_version = 'v1' if url_project is None else 'v2'
        enforcer, target = self.enforcer, {'project_id': scope.project_id,
                                           'user_id': ctx.user_id}
        # both branches above scope to a project
        req.context.caller = Caller(
            scope, Owner(cast(str, scope.project_id), ctx.user_id,
                         ctx.user_name or ''),
            auth_token=ctx.auth_token,
            allows=lambda name: bool(enforcer.enforce(name, target, ctx)))


class StartInProcess:
    """Call ``start`` before each request: what a process runs in the
    background (the backup-health sweep) starts in the process that
    serves, after any fork of a pre-forking server. ``start`` returns at
    once once it has run in this process."""

    def __init__(self, start):
        self.start = start

    def process_request(self, req, resp):
        self.start()
