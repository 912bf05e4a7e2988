"""What the errors of the Elasticsearch client mean to the storage layer.

The one place that classifies ``elasticsearch``/``elastic_transport``
exceptions: a server that cannot answer (connection, timeout, 5xx, 408,
429, a missing index, something that is not Elasticsearch) is
``Unavailable``; a request the server refused is a ``StorageError``. A
version conflict (409) of a conditional write is a lost race; the journal
and the driver tell it apart with ``is_version_conflict`` where a write is
conditional, before the rest comes here.

Client errors name hosts, ports and server messages: they go to the log
only, never into the error's message.
"""

import contextlib
import logging

import elastic_transport
import elasticsearch

from freezer_api.storage import errors

__all__ = ['UNAVAILABLE', 'NO_INDEX', 'CLIENT_ERRORS', 'error_type',
           'status', 'is_version_conflict', 'translate', 'guard',
           'unavailable']

LOG = logging.getLogger(__name__)

UNAVAILABLE = 'the search cluster is unavailable'
NO_INDEX = ('the index does not exist; create it with '
            '"freezer-manage db sync"')

CLIENT_ERRORS = (elasticsearch.ApiError, elasticsearch.TransportError,
                 elastic_transport.TransportError,
                 elasticsearch.UnsupportedProductError)


def unavailable():
    """The error of a cluster that cannot serve the request."""
    return errors.Unavailable(UNAVAILABLE)


def error_type(exc):
    """The ``error.type`` of an Elasticsearch error answer, if any."""
    body = getattr(exc, 'body', None)
    if isinstance(body, dict):
        error = body.get('error')
        if isinstance(error, dict):
            return error.get('type')
    return None


def status(exc):
    """The HTTP status of an error answer, if any."""
    meta = getattr(exc, 'meta', None)
    return getattr(meta, 'status', None)


def is_version_conflict(exc):
    return status(exc) == 409


def translate(what, exc):
    """Return the storage error for a client exception (logged here)."""
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        LOG.error('Elasticsearch error while %s: the server is not a '
                  'supported Elasticsearch: %s', what, exc)
        return unavailable()
    if isinstance(exc, elasticsearch.ApiError):
        code = status(exc)
        if error_type(exc) == 'index_not_found_exception':
            LOG.error('Elasticsearch index missing while %s: %s', what, exc)
            return errors.Unavailable(NO_INDEX)
        if code is not None and (code >= 500 or code in (408, 429)):
            LOG.warning('Elasticsearch failed while %s: %s', what, exc)
            return unavailable()
        LOG.error('Elasticsearch refused a request while %s: %s', what, exc)
        return errors.StorageError('the search cluster refused a request')
    if isinstance(exc, (elastic_transport.TransportError,
                        elasticsearch.TransportError)):
        LOG.warning('Elasticsearch unreachable while %s: %s', what, exc)
        return unavailable()
    LOG.error('Unexpected Elasticsearch client error while %s: %s', what,
              exc)
    return unavailable()


def bulk_item_error(failure):
    """The storage error for a refused item of a bulk request (logged)."""
    LOG.warning('Elasticsearch refused a bulk create: %s',
                failure.get('error'))
    code = failure.get('status', 500)
    if code >= 500 or code == 429:
        return unavailable()
    return errors.StorageError('the search cluster refused a request')


@contextlib.contextmanager
def guard(what):
    """Translate the client errors raised inside, ``what`` naming the
    operation in the log."""
    try:
        yield
    except CLIENT_ERRORS as exc:
        raise translate(what, exc) from None
