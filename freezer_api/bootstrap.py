"""The composition root: from parsed configuration to a WSGI pipeline.

``freezer_api.cmd`` parses the command line or environment, then calls
``load_application``; nothing below this module reads global state.
"""

import logging
import os

from paste import deploy

from freezer_api.api import paste

LOG = logging.getLogger(__name__)

PACKAGE_ETC = os.path.join(os.path.dirname(__file__), 'etc')
STANDARD_DIRS = ('/etc/freezer', '/etc/freezer-api')


def find_paste_config(conf):
    """Locate the paste file: absolute, next to a config file, or shipped."""
    name = conf.paste_deploy.config_file
    if os.path.isabs(name):
        return name
    candidates = [os.path.join(os.path.dirname(path), name)
                  for path in conf.config_file or []]
    if conf.config_dir:
        candidates.append(os.path.join(conf.config_dir, name))
    candidates += [os.path.join(d, name) for d in STANDARD_DIRS]
    candidates.append(os.path.join(PACKAGE_ETC, 'freezer-paste.ini'))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise RuntimeError(f'Cannot find the paste config file {name}')


def load_application(conf):
    """Build the whole WSGI pipeline for ``conf.auth_strategy``."""
    if conf.auth_strategy == 'noauth':
        LOG.warning('auth_strategy is "noauth": requests are NOT '
                    'authenticated; anyone who reaches this port acts as '
                    'any user. Use auth_strategy = keystone in production.')
    paste.use_conf(conf)
    paste_file = find_paste_config(conf)
    LOG.info('Loading pipeline freezer-api-%s from %s', conf.auth_strategy,
             paste_file)
    return deploy.loadapp(f'config:{paste_file}',
                          name=f'freezer-api-{conf.auth_strategy}')
