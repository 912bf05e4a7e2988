"""Configuration options, one module per group (see ``opts.list_opts``).

Everything that reads configuration receives a ``cfg.ConfigOpts``; only
``freezer_api.cmd`` parses the command line.
"""

from oslo_config import cfg

from freezer_api.conf import api
from freezer_api.conf import audit
from freezer_api.conf import centralized_scheduler
from freezer_api.conf import database
from freezer_api.conf import default
from freezer_api.conf import elasticsearch
from freezer_api.conf import health
from freezer_api.conf import metrics
from freezer_api.conf import middleware
from freezer_api.conf import noauth
from freezer_api.conf import paste_deploy
from freezer_api.conf import storage

CONF = cfg.CONF

CONF_MODULES = (default, api, storage, database, elasticsearch, noauth,
                paste_deploy, centralized_scheduler, middleware, health,
                metrics, audit)


def configure(conf=None):
    """Register every option group on ``conf`` (the global CONF by default)."""
    if conf is None:
        conf = CONF
    for module in CONF_MODULES:
        module.register_opts(conf)
    return conf
