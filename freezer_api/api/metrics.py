"""The Prometheus endpoint and the middleware that counts the requests.

Off unless ``[metrics] enabled``. The metrics name projects, so the
route answers without a token only the addresses of ``[metrics]
allowed_addresses``; other callers need a token that the ``metrics:get``
policy allows (admin by default).
"""

import ipaddress
import logging
import os
import time

import falcon

from freezer_api.api import openapi
from freezer_api.api.context import ENVIRON_KEY
from freezer_api.api.errors import forbidden
from freezer_api.metrics import exporter
from freezer_api.metrics import figures
from freezer_api.storage import errors as storage_errors

LOG = logging.getLogger(__name__)

RULE = 'metrics:get'
# Paths the metrics may not take over.
RESERVED = ('/', '/healthcheck', '/v1', '/v2', openapi.PATH)
# NOTE: a label value per distinct method string would let any caller
# add series; others are counted together.
METHODS = frozenset(falcon.COMBINED_METHODS)
STORE_ERRORS = ((storage_errors.QueryTimeout, 'query_timeout'),
                (storage_errors.Unavailable, 'unavailable'),
                (storage_errors.Conflict, 'conflict'))


def directory_of(conf):
    return (conf.metrics.multiprocess_dir
            or os.path.join(conf.state_path, 'metrics'))


def from_conf(conf, storage, enforcer, health=None):
    """The metrics of the app, or None when ``[metrics]`` is disabled.

    ``health``: a function answering the backup-health families
    (``CoverageManager.figures``), read at most every
    ``store_cache_seconds``."""
    if not conf.metrics.enabled:
        return None
    path = conf.metrics.path
    if path in RESERVED or path.startswith(('/v1/', '/v2/')):
        raise RuntimeError(f'[metrics] path {path} is taken by the API')
    networks = []
    for value in conf.metrics.allowed_addresses:
        try:
            networks.append(ipaddress.ip_network(value.strip(),
                                                 strict=False))
        except ValueError:
            raise RuntimeError(f'[metrics] allowed_addresses: {value!r} '
                               f'is not an address or network') from None
    seconds = conf.metrics.store_cache_seconds
    own = () if health is None else (figures.Cached(health, seconds),)
    return Metrics(exporter.Exporter(directory_of(conf), storage, seconds,
                                     own),
                   path, networks, enforcer)


def middleware(metrics):
    return () if metrics is None else (metrics.recorder,)


def add_route(app, metrics):
    if metrics is not None:
        app.add_route(metrics.path, metrics.resource)


class Metrics:
    def __init__(self, exporter, path, networks, enforcer):
        self.exporter = exporter
        self.path = path
        self.recorder = RecordRequests(exporter.instruments)
        self.resource = MetricsResource(exporter, networks, enforcer)


def _store_error(ex):
    for cls, name in STORE_ERRORS:
        if isinstance(ex, cls):
            return name
    return None


class RecordRequests:
    """Falcon middleware, first in line: counts and times every request
    by route template (never the URL: it names projects and ids)."""

    def __init__(self, instruments):
        self.instruments = instruments

    def process_request(self, req, resp):
        req.context.metrics_started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded):
        started = req.context.get('metrics_started')
        if started is None:
            return
        elapsed = time.perf_counter() - started
        method = req.method if req.method in METHODS else 'other'
        self.instruments.record(req.uri_template or 'unmatched', method,
                                str(resp.status_code), elapsed)
        error = req.context.get('error')
        if error is not None:
            name = _store_error(error)
            if name is not None:
                self.instruments.store_errors.labels(name).inc()


class MetricsResource:
    """``GET <[metrics] path>``: the Prometheus text format."""

    # NOTE: CallerScope skips public resources: access is checked here,
    # by address first, so that Prometheus needs no token.
    public = True
    media_type = falcon.MEDIA_TEXT

    def __init__(self, exporter, networks, enforcer):
        self.exporter = exporter
        self.networks = networks
        self.enforcer = enforcer

    def _from_allowed_address(self, req):
        # NOTE: the environ, not req.remote_addr, which says 127.0.0.1
        # when the server gave no address.
        try:
            address = ipaddress.ip_address(req.env.get('REMOTE_ADDR', ''))
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def _check_access(self, req):
        if self._from_allowed_address(req):
            return
        ctx = req.env.get(ENVIRON_KEY)
        if ctx is None or not ctx.user_id:
            raise falcon.HTTPUnauthorized(
                title='Unauthorized',
                description='The metrics need a token from this address.')
        if not self.enforcer.enforce(RULE, {}, ctx):
            raise forbidden()

    def on_get(self, req, resp):
        self._check_access(req)
        resp.content_type = exporter.CONTENT_TYPE
        resp.data = self.exporter.render()
