"""Errors raised by storage drivers.

They carry no HTTP knowledge; ``freezer_api.api.errors`` maps them to status
codes at the edge. Messages never contain backend text (SQL, traces, hosts):
drivers log the details and raise one of these.
"""

__all__ = ['StorageError', 'NotFound', 'Conflict', 'Unavailable',
           'QueryTimeout']


class StorageError(Exception):
    """Base class of every storage error."""

    def __init__(self, message=''):
        super().__init__(message)
        self.message = message


class NotFound(StorageError):
    """No document with that id exists within the caller's scope."""


class Conflict(StorageError):
    """The write collides with existing data.

    Raised when an id (or a client_id within its project) is already taken,
    or when an atomic change kept losing races after all its retries.
    """


class Unavailable(StorageError):
    """The store cannot be reached or answered with a transient failure."""


class QueryTimeout(Unavailable):
    """The store stopped a query at its time limit (``query_timeout``)."""
