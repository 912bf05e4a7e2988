"""[health] options: the run ledger, missed and stuck runs, coverage
(issue 15)."""

from oslo_config import cfg

GROUP_NAME = 'health'

OPTS = [
    cfg.IntOpt(
        'run_retention_days', default=90, min=1,
        help='Days a run record is kept. Older records are no longer '
             'listed, and are removed by the background sweep and when '
             'the runs of their job are read.'),
    cfg.IntOpt(
        'default_run_lease', default=6 * 3600, min=1,
        help='Seconds a run may go without a report from its scheduler '
             'before it is shown as stale and its record ends as lost, '
             'for jobs without a run_lease of their own.'),
    cfg.IntOpt(
        'missed_grace', default=300, min=0,
        help='Seconds after an expected run time within which a run must '
             'start; the grace of a job is the larger of this and '
             'missed_grace_percent of its interval.'),
    cfg.IntOpt(
        'missed_grace_percent', default=10, min=0, max=100,
        help='Percent of a job\'s interval that its grace is at least.'),
    cfg.IntOpt(
        'client_offline_after', default=300, min=1,
        help='Seconds without a poll after which a client counts as '
             'offline.'),
    cfg.FloatOpt(
        'presence_flush_interval', default=30.0, min=0.0,
        help='Seconds between two writes of one client\'s last poll time '
             'by one API process (polls in between are coalesced into the '
             'next write; 0 writes at every poll).'),
    cfg.FloatOpt(
        'sweep_interval', default=60.0, min=0.0,
        help='Seconds between two background sweeps of one API process '
             '(each process waits a random 50-100% of it): jobs whose '
             'summary is due are settled (missed runs written and '
             'announced, overdue runs ended as lost), and run records '
             'past their retention are removed. Coverage settles a job it '
             'finds due itself, so the sweep is what keeps it fast and '
             'the health notifications timely. 0 turns the sweep off.'),
]


def register_opts(conf):
    conf.register_opts(OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: list(OPTS)}
