"""[oslo_middleware] options read by the service's own WSGI filters.

The option objects are oslo.middleware's, so the name, group and meaning
are the ones operators already set for every OpenStack service.
"""

from oslo_middleware import http_proxy_to_wsgi

GROUP_NAME = 'oslo_middleware'

ALL_OPTS = list(http_proxy_to_wsgi.OPTS)


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
