"""Plain WSGI filters of the pipeline: request ids and proxy headers.

They do what OpenStack services get from oslo.middleware's ``RequestId``
and ``HTTPProxyToWSGI`` (same environ keys, header and option), without
building a WebOb request and response around every call.

PERF: those two cost about 180 us per request here (WebOb objects, and a
signature inspection per call), a fifth of a whole GET of one document.
They also read their option through a configuration object of their own;
these read the service's (``[oslo_middleware]
enable_proxy_headers_parsing``).
"""

import re
import uuid

ENV_REQUEST_ID = 'openstack.request_id'
ENV_GLOBAL_REQUEST_ID = 'openstack.global_request_id'
RESPONSE_HEADER = 'x-openstack-request-id'
_INBOUND = 'HTTP_X_OPENSTACK_REQUEST_ID'
_GLOBAL_ID = re.compile(
    r'req-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}')
_SCHEMES = frozenset(('http', 'https'))


class RequestId:
    """Give every request an id, in the environ and in the answer.

    A well-formed ``X-OpenStack-Request-ID`` sent by another service is
    kept as the global request id, as oslo.context expects.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        inbound = environ.get(_INBOUND)
        if inbound and _GLOBAL_ID.fullmatch(inbound):
            environ[ENV_GLOBAL_REQUEST_ID] = inbound
        request_id = 'req-' + str(uuid.uuid4())
        environ[ENV_REQUEST_ID] = request_id

        def start_with_id(status, headers, exc_info=None):
            if not any(name.lower() == RESPONSE_HEADER
                       for name, _ in headers):
                headers.append((RESPONSE_HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_id)


def _forwarded_first(value):
    """The first proxy's fields of an RFC 7239 ``Forwarded`` header."""
    fields = {}
    for pair in value.split(',', 1)[0].split(';'):
        name, _, field = pair.partition('=')
        fields[name.strip().lower()] = field.strip().strip('"')
    return fields


class ProxyHeaders:
    """Behind a TLS-terminating proxy, see the URL the client used.

    Off unless ``[oslo_middleware] enable_proxy_headers_parsing``: the
    headers are only trustworthy when a proxy of the operator sets them.
    """

    def __init__(self, app, enabled):
        self.app = app
        self.enabled = enabled

    def __call__(self, environ, start_response):
        if self.enabled:
            self._rewrite(environ)
        return self.app(environ, start_response)

    @staticmethod
    def _rewrite(environ):
        forwarded = environ.get('HTTP_FORWARDED')
        if forwarded:
            fields = _forwarded_first(forwarded)
            proto = fields.get('proto')
            host = fields.get('host')
            remote = fields.get('for')
        else:
            proto = environ.get('HTTP_X_FORWARDED_PROTO')
            host = environ.get('HTTP_X_FORWARDED_HOST')
            remote = environ.get('HTTP_X_FORWARDED_FOR')
        if proto and proto.lower() in _SCHEMES:
            environ['wsgi.url_scheme'] = proto.lower()
        if host:
            environ['HTTP_HOST'] = host
        if remote:
            # the client, not the proxies it passed through
            environ['REMOTE_ADDR'] = remote.split(',', 1)[0].strip()
        prefix = environ.get('HTTP_X_FORWARDED_PREFIX')
        if prefix:
            environ['SCRIPT_NAME'] = (prefix.rstrip('/')
                                      + environ.get('SCRIPT_NAME', ''))
