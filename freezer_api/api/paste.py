"""PasteDeploy factories named in ``freezer_api/etc/freezer-paste.ini``.

They are thin adapters. PasteDeploy can only pass strings to factories, so
the parsed configuration is handed over by ``use_conf`` (called by
``freezer_api.bootstrap`` just before it loads the pipeline).
"""

from typing import Any

from freezer_api import notifications
from freezer_api import storage
from freezer_api.api import app
from freezer_api.api import context
from freezer_api.api import filters
from freezer_api.identity import trusts as identity_trusts

_state: dict[str, Any] = {}


def use_conf(conf):
    _state['conf'] = conf


def _conf():
    try:
        return _state['conf']
    except KeyError:
        raise RuntimeError('freezer_api.api.paste.use_conf() was not called')


def app_factory(global_conf, **local_conf):
    conf = _conf()
    trusts = None
    if conf.centralized_scheduler.enabled:
        if conf.auth_strategy != 'keystone':
            raise RuntimeError('[centralized_scheduler] enabled = true '
                               'needs auth_strategy = keystone')
        trusts = identity_trusts.KeystoneTrusts(conf)
    driver = storage.load_driver(conf)
    return app.create_app(conf, driver, trusts=trusts,
                          notifications=notifications.from_conf(conf,
                                                                driver))


def noauth_filter_factory(global_conf, **local_conf):
    conf = _conf()
    return lambda wrapped: context.NoAuthMiddleware(wrapped, conf)


def authtoken_filter_factory(global_conf, **local_conf):
    """keystonemiddleware's auth_token, reading ``[keystone_authtoken]``
    from the service's own configuration object (not oslo's global one)."""
    from keystonemiddleware import auth_token

    settings = {**global_conf, **local_conf, 'oslo_config_config': _conf()}
    return lambda wrapped: auth_token.AuthProtocol(wrapped, settings)


def context_filter_factory(global_conf, **local_conf):
    conf = _conf()
    return lambda wrapped: context.KeystoneContextMiddleware(wrapped, conf)


def request_id_filter_factory(global_conf, **local_conf):
    return filters.RequestId


def proxy_headers_filter_factory(global_conf, **local_conf):
    enabled = _conf().oslo_middleware.enable_proxy_headers_parsing
    return lambda wrapped: filters.ProxyHeaders(wrapped, enabled)
