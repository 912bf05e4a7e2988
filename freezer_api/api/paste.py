"""PasteDeploy factories named in ``etc/freezer/freezer-paste.ini``.

They are thin adapters. PasteDeploy can only pass strings to factories, so
the parsed configuration is handed over by ``use_conf`` (called by
``freezer_api.bootstrap`` just before it loads the pipeline).
"""

from freezer_api import storage
from freezer_api.api import app
from freezer_api.api import context

_state = {}


def use_conf(conf):
    _state['conf'] = conf


def _conf():
    try:
        return _state['conf']
    except KeyError:
        raise RuntimeError('freezer_api.api.paste.use_conf() was not called')


def app_factory(global_conf, **local_conf):
    conf = _conf()
    return app.create_app(conf, storage.load_driver(conf))


def noauth_filter_factory(global_conf, **local_conf):
    conf = _conf()
    return lambda wrapped: context.NoAuthMiddleware(wrapped, conf)


def context_filter_factory(global_conf, **local_conf):
    conf = _conf()
    return lambda wrapped: context.KeystoneContextMiddleware(wrapped, conf)
