"""[storage] options: which storage driver keeps the documents."""

from oslo_config import cfg

GROUP_NAME = 'storage'

ALL_OPTS = [
    cfg.StrOpt(
        'driver', default='sqlalchemy',
        help='Storage driver, by entry point name in the '
             '"freezer_api.storage.drivers" namespace: "sqlalchemy" '
             '(SQLite, PostgreSQL, MySQL/MariaDB; see [database]) or '
             '"elasticsearch".'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
