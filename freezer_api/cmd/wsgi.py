"""WSGI entry point: ``freezer_api.cmd.wsgi:application``.

Usable as written in uwsgi (``--module freezer_api.cmd.wsgi:application``)
and mod_wsgi. Configuration comes from ``FREEZER_API_CONFIG_FILES`` /
``FREEZER_API_CONFIG_DIR`` or the standard locations, never from the host
server's command line.

Unlike the ``freezer-api`` development server, it does not fall back to
``noauth`` when no configuration file exists: loading fails with a message
saying how to set ``auth_strategy`` (a file, or
``FREEZER_API_AUTH_STRATEGY=noauth`` for a deliberate test setup).
"""

import sys

from freezer_api import bootstrap
from freezer_api.cmd import common


def initialize_application():
    args, default_files = common.config_from_environment()
    try:
        conf = common.load_config(args, default_files=default_files,
                                  noauth_without_files=False)
    except common.ConfigurationError as exc:
        # NOTE: the WSGI server logs the exception too, but its traceback
        # buries the one line the operator needs.
        print(exc, file=sys.stderr, flush=True)
        raise
    return bootstrap.load_application(conf)


application = initialize_application()
common.freeze_startup_objects()
