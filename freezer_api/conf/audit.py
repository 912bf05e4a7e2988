"""[audit] options: how long the audit trail is kept."""

from oslo_config import cfg

GROUP_NAME = 'audit'

ALL_OPTS = [
    cfg.IntOpt(
        'retention_days', default=365, min=0,
        help='Days an audit record is kept: "freezer-manage audit purge" '
             '(run it daily, e.g. from cron) removes older ones. 0 keeps '
             'every record. The chain stays verifiable from the oldest '
             'record kept.'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
