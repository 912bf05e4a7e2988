"""[centralized_scheduler] options: trusts for central schedulers.

A central freezer-scheduler runs the jobs of many projects as the freezer
service user. A job aimed at a central client carries a Keystone trust from
the job's user to that service user; the scheduler acts through it.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP_NAME = 'centralized_scheduler'

OPTS = [
    cfg.BoolOpt(
        'enabled', default=False,
        help='Accept central clients (is_central, admin only) and give '
             'every job aimed at one a Keystone trust from the job\'s user '
             'to the service user below. Needs auth_strategy = keystone.'),
    cfg.ListOpt(
        'trusts_delegated_roles', default=['member'],
        help='Roles the job\'s user delegates to the central scheduler on '
             'the job\'s project. The user must hold them.'),
]


def register_opts(conf):
    conf.register_opts(OPTS, group=GROUP_NAME)
    # NOTE: the trustee: the service user central schedulers run as. Any
    # keystoneauth plugin; "auth_section = keystone_authtoken" reuses the
    # credentials freezer-api validates tokens with.
    ks_loading.register_auth_conf_options(conf, GROUP_NAME)
    ks_loading.register_session_conf_options(conf, GROUP_NAME)


def list_opts():
    opts = list(OPTS)
    opts += ks_loading.get_session_conf_options()
    opts += ks_loading.get_auth_common_conf_options()
    opts += ks_loading.get_auth_plugin_conf_options('password')
    return {GROUP_NAME: opts}
