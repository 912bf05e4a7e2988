"""[noauth] options: the identity used when no one is named."""

from oslo_config import cfg

GROUP_NAME = 'noauth'

ALL_OPTS = [
    cfg.StrOpt(
        'user_id', default='freezer',
        help='User owning requests that carry no X-User-Id header and no '
             '"user_id:project_id" X-Auth-Token (auth_strategy = noauth).'),
    cfg.StrOpt(
        'user_name', default='freezer',
        help='User name recorded on backups for such requests.'),
    cfg.StrOpt(
        'project_id', default='freezer',
        help='Project of such requests.'),
    cfg.ListOpt(
        'roles', default=['member', 'reader'],
        help='Roles of requests that carry no X-Roles header. Not admin by '
             'default: a caller that names no roles may not reach other '
             'projects; send "X-Roles: admin" (or list admin here) to act '
             'as an admin.'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
