"""[database] options of the SQLAlchemy storage driver."""

from oslo_config import cfg

GROUP_NAME = 'database'

ALL_OPTS = [
    cfg.StrOpt(
        'connection', secret=True,
        sample_default='sqlite:///$state_path/freezer-api.sqlite',
        help='SQLAlchemy URL of the database, for example '
             'postgresql+psycopg://freezer:secret@db/freezer or '
             'mysql+pymysql://freezer:secret@db/freezer. Unset means the '
             'embedded SQLite file freezer-api.sqlite in state_path.'),
    cfg.IntOpt(
        'sqlite_busy_timeout', default=30000, min=0,
        help='Milliseconds a SQLite writer waits for another process to '
             'release the database before giving up. Raise it when many '
             'uwsgi workers share one file under heavy load.'),
    cfg.IntOpt(
        'max_pool_size', default=5, min=1,
        help='Connections kept open per API process (server databases).'),
    cfg.IntOpt(
        'max_overflow', default=10, min=0,
        help='Extra connections allowed above max_pool_size under load.'),
    cfg.IntOpt(
        'pool_timeout', default=30, min=1,
        help='Seconds to wait for a free pooled connection.'),
    cfg.IntOpt(
        'max_retries', default=10, min=1,
        help='Attempts for one atomic change that loses a race against a '
             'concurrent writer (deadlock, serialization failure or a '
             'version conflict) before the request fails with 409.'),
    cfg.FloatOpt(
        'query_timeout', default=10.0, min=0,
        help='Seconds one query may run before the database stops it and '
             'the request fails with 503 (PostgreSQL statement_timeout, '
             'MariaDB max_statement_time, MySQL max_execution_time, a '
             'SQLite progress handler). It bounds how long an expensive '
             'search keeps a worker busy, also after its client gave up. '
             'Schema upgrades are not limited; 0 means no limit.'),
    cfg.BoolOpt(
        'connection_debug', default=False,
        help='Log every SQL statement (very verbose).'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
