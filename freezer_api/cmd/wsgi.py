"""WSGI entry point: ``freezer_api.cmd.wsgi:application``.

Usable as written in uwsgi (``--module freezer_api.cmd.wsgi:application``)
and mod_wsgi. Configuration comes from ``FREEZER_API_CONFIG_FILES`` /
``FREEZER_API_CONFIG_DIR`` or the standard locations, never from the host
server's command line.
"""

from freezer_api import bootstrap
from freezer_api.cmd import common


def initialize_application():
    args, default_files = common.config_from_environment()
    conf = common.load_config(args, default_files=default_files)
    return bootstrap.load_application(conf)


application = initialize_application()
