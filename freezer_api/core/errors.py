"""Errors raised by the rules. ``freezer_api.api.errors`` maps them to HTTP."""

__all__ = ['FreezerError', 'InvalidInput', 'Forbidden', 'NotFound',
           'Conflict', 'PreconditionFailed', 'Unprocessable',
           'UnknownAction', 'Unavailable']


class FreezerError(Exception):
    """Base class: ``message`` is safe to show to the caller."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidInput(FreezerError):
    """The request body, query or path value breaks a rule."""


class Forbidden(FreezerError):
    """The caller may not act on this project."""


class NotFound(FreezerError):
    """A document named by the request is absent or outside the scope."""


class Conflict(FreezerError):
    """The id or client_id is taken."""


class PreconditionFailed(FreezerError):
    """``If-Match`` names a version other than the stored one."""


class Unprocessable(FreezerError):
    """A job names an unregistered client or an unsupported capability."""


class UnknownAction(FreezerError):
    """A session action other than start or end was requested."""


class Unavailable(FreezerError):
    """A service the rules depend on (Keystone, for trusts) is down."""
