"""Configuration loading shared by the entry points."""

import gc
import os

from oslo_config import cfg
from oslo_log import log

from freezer_api import conf as conf_pkg
from freezer_api.conf import default

PROJECT = 'freezer-api'
# NOTE: upstream and DevStack keep the file in /etc/freezer, which is not
# one of oslo.config's default places for project "freezer-api".
EXTRA_CONFIG_FILES = ('/etc/freezer/freezer-api.conf',)
CONFIG_FILES_ENV = 'FREEZER_API_CONFIG_FILES'
CONFIG_DIR_ENV = 'FREEZER_API_CONFIG_DIR'
AUTH_STRATEGY_ENV = 'FREEZER_API_AUTH_STRATEGY'

NO_AUTH_STRATEGY = (
    'freezer-api refuses to serve: no configuration file was found, so '
    'nothing says how callers are authenticated. Name a configuration '
    'file that sets [DEFAULT] auth_strategy (keystone for production) '
    'with FREEZER_API_CONFIG_FILES=/etc/freezer/freezer-api.conf, or put '
    'it in /etc/freezer/freezer-api.conf; for a deliberate test setup '
    'without authentication set FREEZER_API_AUTH_STRATEGY=noauth in the '
    'WSGI server\'s environment.')


class ConfigurationError(RuntimeError):
    """The configuration does not allow the service to start."""


def default_config_files():
    # NOTE: prog too, else oslo.config also reads "<argv[0]>.conf": under
    # uwsgi or mod_wsgi ~/.freezer-api/uwsgi.conf, /etc/mod_wsgi.conf...
    files = list(cfg.find_config_files(project=PROJECT, prog=PROJECT))
    files += [f for f in EXTRA_CONFIG_FILES
              if os.path.isfile(f) and f not in files]
    return files


def _auth_strategy_from_environment():
    value = os.environ.get(AUTH_STRATEGY_ENV, '').strip()
    if value and value not in default.AUTH_STRATEGIES:
        raise ConfigurationError(
            f'{AUTH_STRATEGY_ENV} must be one of '
            f'{", ".join(default.AUTH_STRATEGIES)}, not {value[:40]!r}')
    return value or None


def load_config(args, conf=None, default_files=None, version='0.1.0',
                noauth_without_files=True):
    """Parse ``args`` and the config files; return the ``ConfigOpts``.

    ``FREEZER_API_AUTH_STRATEGY`` sets the default ``auth_strategy`` (a
    file that names one still wins). With no config file and no such
    variable, ``auth_strategy`` is ``noauth`` (``bootstrap`` warns) when
    ``noauth_without_files`` is true, as for the loopback development
    server; otherwise ``ConfigurationError`` says how to set it.
    """
    if conf is None:
        conf = cfg.ConfigOpts()
    conf_pkg.configure(conf)
    log.register_options(conf)
    if default_files is None:
        default_files = default_config_files()
    conf(args, project=PROJECT, version=version,
         default_config_files=default_files)
    from_environment = _auth_strategy_from_environment()
    if from_environment is not None:
        conf.set_default('auth_strategy', from_environment)
    elif not conf.config_file and not conf.config_dir:
        if not noauth_without_files:
            raise ConfigurationError(NO_AUTH_STRATEGY)
        conf.set_default('auth_strategy', 'noauth')
    log.setup(conf, PROJECT)
    return conf


def config_from_environment():
    """Config files named by the environment, for WSGI containers.

    ``FREEZER_API_CONFIG_FILES`` is a comma-separated list of files and
    ``FREEZER_API_CONFIG_DIR`` a config directory; without them the
    standard locations are used. The host process's argv is never read.
    """
    args = []
    files = os.environ.get(CONFIG_FILES_ENV)
    config_dir = os.environ.get(CONFIG_DIR_ENV)
    default_files = None
    if files:
        default_files = [f.strip() for f in files.split(',') if f.strip()]
        missing = [f for f in default_files if not os.path.isfile(f)]
        if missing:
            raise SystemExit(f'{CONFIG_FILES_ENV} names missing files: '
                             f'{", ".join(missing)}')
    if config_dir:
        args += ['--config-dir', config_dir]
    return args, default_files


def freeze_startup_objects():
    """Take what the process built at start-up (modules, the pipeline,
    compiled statements, policy rules) out of the garbage collector's
    scans, once the application is loaded.

    PERF: every full collection otherwise walks those ~100 000 objects,
    and a request that builds many documents triggers several: a coverage
    read of 10 000 jobs and 1 000 000 run records took 397 ms (median)
    with them, 290 ms frozen. Collected first, so that no garbage is
    kept; under a pre-forking server the pages stay shared too.
    """
    gc.collect()
    gc.freeze()
