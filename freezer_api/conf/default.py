"""[DEFAULT] options: where the service listens, whom it trusts."""

import os

from oslo_config import cfg

GROUP_NAME = 'DEFAULT'

AUTH_STRATEGIES = ('keystone', 'noauth')


def default_state_path():
    """Pick the data directory used when none is configured.

    NOTE: root (packages, DevStack) gets the FHS location; anyone else gets a
    per-user directory, so ``freezer-api`` works out of the box without sudo.
    """
    env = os.environ.get('FREEZER_API_STATE_PATH')
    if env:
        return env
    if os.geteuid() == 0:
        return '/var/lib/freezer-api'
    base = os.environ.get('XDG_DATA_HOME') or os.path.expanduser(
        '~/.local/share')
    return os.path.join(base, 'freezer-api')


CLI_OPTS = [
    cfg.HostAddressOpt(
        'bind-host', default='127.0.0.1',
        help='Address the standalone freezer-api server listens on. Set it '
             'to 0.0.0.0 to serve other hosts (ignored under uwsgi or '
             'mod_wsgi, which bind on their own).'),
    cfg.PortOpt(
        'bind-port', default=9090,
        help='TCP port of the standalone freezer-api server.'),
]

OPTS = [
    cfg.StrOpt(
        'auth_strategy', default='keystone', choices=AUTH_STRATEGIES,
        help='How callers are identified. "keystone" validates tokens with '
             'keystonemiddleware; "noauth" trusts X-User-Id/X-Project-Id/'
             'X-Roles headers and is only for tests and single-user '
             'setups. freezer-api started without any config file uses '
             '"noauth" and says so in its log; the WSGI application '
             'refuses to load without a config file unless the '
             'environment variable FREEZER_API_AUTH_STRATEGY names the '
             'strategy (it is also the default of this option).'),
    cfg.StrOpt(
        'state_path', default=default_state_path(),
        sample_default='/var/lib/freezer-api (root) or '
                       '~/.local/share/freezer-api',
        help='Directory for local state such as the embedded SQLite '
             'database. Environment variable FREEZER_API_STATE_PATH '
             'overrides the default.'),
    cfg.StrOpt(
        'default_schedule_timezone', default='UTC',
        help='IANA time zone (for example Europe/Berlin) in which the '
             'schedule of a job without job_schedule.schedule_timezone '
             'is read: the local time zone of its freezer-scheduler '
             'hosts. It places the cron fields and start dates without '
             'offset, as the scheduler does, in GET .../jobs/{id}/'
             'schedule.'),
]


ALL_OPTS = CLI_OPTS + OPTS


def register_opts(conf):
    # NOTE: --bind-host/--bind-port are also command line options, as
    # upstream's were.
    conf.register_cli_opts(CLI_OPTS)
    conf.register_opts(OPTS)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
