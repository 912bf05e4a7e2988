"""[paste_deploy] options: the WSGI pipeline definition."""

from oslo_config import cfg

GROUP_NAME = 'paste_deploy'

ALL_OPTS = [
    cfg.StrOpt(
        'config_file', default='freezer-paste.ini',
        help='PasteDeploy file defining the WSGI pipelines. A relative '
             'name is looked up next to the loaded freezer-api.conf, then '
             'in the standard config directories; the copy shipped inside '
             'the package is used last.'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
