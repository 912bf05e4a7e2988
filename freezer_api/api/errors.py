"""One mapping from errors to HTTP responses, registered on the app.

Every error body is ``{"title": ..., "description": ...}`` (spec D3). A 500
never carries backend text: the traceback goes to the log only.
"""

import logging

import falcon

from freezer_api.core import errors as core_errors
from freezer_api.storage import errors as storage_errors

LOG = logging.getLogger(__name__)

# (exception class, status, title, log level)
MAPPING = (
    (core_errors.InvalidInput, falcon.HTTP_400, 'Bad request format',
     logging.DEBUG),
    (core_errors.Forbidden, falcon.HTTP_403, 'Access Forbidden',
     logging.WARNING),
    (core_errors.NotFound, falcon.HTTP_404, 'Not Found', logging.DEBUG),
    (storage_errors.NotFound, falcon.HTTP_404, 'Not Found', logging.DEBUG),
    (core_errors.Conflict, falcon.HTTP_409, 'Document already existing',
     logging.INFO),
    (storage_errors.Conflict, falcon.HTTP_409, 'Conflict', logging.WARNING),
    (core_errors.PreconditionFailed, falcon.HTTP_412,
     'Precondition Failed', logging.INFO),
    (core_errors.Unprocessable, falcon.HTTP_422, 'Unprocessable Entity',
     logging.INFO),
    (storage_errors.QueryTimeout, falcon.HTTP_503, 'Query Timeout',
     logging.WARNING),
    (storage_errors.Unavailable, falcon.HTTP_503, 'Service Unavailable',
     logging.ERROR),
    (core_errors.Unavailable, falcon.HTTP_503, 'Service Unavailable',
     logging.ERROR),
)

FORBIDDEN = 'You are not allowed to access this resource'


def forbidden(description=FORBIDDEN):
    """The 403 of a policy denial or a foreign project (spec §1.1)."""
    return falcon.HTTPForbidden(title='Access Forbidden',
                                description=description)


STORAGE_CONFLICT = ('The document was changed by concurrent requests too '
                    'many times; retry the request.')
STORAGE_UNAVAILABLE = 'The storage backend is unavailable; retry later.'
QUERY_TIMEOUT = ('The search ran longer than the store allows and was '
                 'stopped; narrow it (more or longer terms, fewer _all '
                 'needles) or retry later.')


def _handler(status, title, level):
    def handle(req, resp, ex, params):
        req.context.error = ex  # for the metrics (store errors)
        description = ex.message or title
        if isinstance(ex, storage_errors.Conflict):
            description = STORAGE_CONFLICT
        elif isinstance(ex, storage_errors.QueryTimeout):
            description = QUERY_TIMEOUT
        elif isinstance(ex, storage_errors.Unavailable):
            description = STORAGE_UNAVAILABLE
        if status == falcon.HTTP_503:
            resp.set_header('Retry-After', '5')
        LOG.log(level, '%s %s: %s %s', req.method, req.path, status,
                ex.message)
        raise falcon.HTTPError(status, title=title, description=description)
    return handle


def _unknown_action(req, resp, ex, params):
    # NOTE: upstream's Allow listed every method; the route takes POST only.
    raise falcon.HTTPMethodNotAllowed(['POST'], title='Bad Method',
                                      description=ex.message)


def _unexpected(req, resp, ex, params):
    LOG.exception('Unexpected error in %s %s', req.method, req.path)
    raise falcon.HTTPInternalServerError(
        title='Internal Server Error',
        description='The server failed to process the request; the error '
                    'has been logged.')


def _serialize(req, resp, exception):
    """Render every error as JSON with a description, whatever Accept says.

    NOTE: Falcon's default leaves out the body when the client does not
    accept JSON and has no description for routing errors (404, 405).
    """
    body = exception.to_dict()
    body.setdefault('description', body.get('title', ''))
    resp.media = body
    resp.content_type = falcon.MEDIA_JSON


def register(app):
    # NOTE: Falcon resolves handlers by the most specific class, so its
    # own HTTPError handler still wins over this catch-all.
    app.add_error_handler(Exception, _unexpected)
    for cls, status, title, level in MAPPING:
        app.add_error_handler(cls, _handler(status, title, level))
    app.add_error_handler(core_errors.UnknownAction, _unknown_action)
    app.set_error_serializer(_serialize)
