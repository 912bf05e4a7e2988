"""[metrics] options: the Prometheus endpoint."""

from oslo_config import cfg

GROUP_NAME = 'metrics'

ALL_OPTS = [
    cfg.BoolOpt(
        'enabled', default=False,
        help='Serve Prometheus metrics at [metrics] path. Off by default: '
             'the metrics name projects.'),
    cfg.StrOpt(
        'path', default='/metrics',
        regex=r'^/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$',
        help='URL path of the metrics (outside /v1 and /v2).'),
    cfg.ListOpt(
        'allowed_addresses', default=[],
        help='Addresses or networks (CIDR, e.g. 10.0.0.0/8, ::1) that may '
             'read the metrics without a token: the Prometheus servers. '
             'Other callers need a token allowed by the metrics:get '
             'policy (admin by default). The address is the peer of the '
             'connection, or the one Forwarded/X-Forwarded-For names when '
             '[oslo_middleware] enable_proxy_headers_parsing is set.'),
    cfg.StrOpt(
        'multiprocess_dir',
        help='Directory where every process of the service keeps its '
             'counts (prometheus_client multiprocess mode), so that the '
             'figures of all uwsgi or mod_wsgi processes add up. Must be '
             'private to this host and service, writable by it, and kept '
             'across restarts of single workers. Default: '
             '<state_path>/metrics.'),
    cfg.FloatOpt(
        'store_cache_seconds', default=60.0, min=0.0,
        help='How long the figures read from the store (documents by '
             'kind, job and session states) are reused by every process '
             'before being counted again (at least ten times as long as '
             'counting took). Counting reads every document: about a '
             'second of CPU per 20,000 documents on SQLite.'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
