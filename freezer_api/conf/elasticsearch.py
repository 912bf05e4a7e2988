"""[elasticsearch] options of the Elasticsearch storage driver.

Used only with ``[storage] driver = elasticsearch``.
"""

from oslo_config import cfg

GROUP_NAME = 'elasticsearch'

REFRESH_CHOICES = [
    ('true', 'refresh the index before answering a write: a list right '
             'after a write shows it (read-your-writes); the writers of a '
             'process that finish together share one refresh, and each '
             'write waits for one'),
    ('on_search', 'writes answer without a refresh, and a search first '
                  'refreshes the index, which costs next to nothing when '
                  'nothing was written since the last refresh: a list '
                  'after a write shows it, whichever API process or host '
                  'serves the list (read-your-writes), and writes do not '
                  'wait; the searches of a process that come together '
                  'share one refresh, and each search pays a round trip '
                  'for it (on a small machine: writes 1.5x faster, polls '
                  'and searches half as fast as with true)'),
    ('wait_for', 'answer once the next periodic refresh made the write '
                 'visible: read-your-writes without forcing refreshes, but '
                 'every write waits up to the index refresh interval '
                 '(1 s by default)'),
    ('false', 'do not wait: lists may miss a write for up to the refresh '
              'interval; fastest, for bulk loads only'),
]

ALL_OPTS = [
    cfg.ListOpt(
        'hosts', default=['http://127.0.0.1:9200'],
        help='Elasticsearch nodes to send requests to, as URLs '
             '(http://host:9200 or https://host:9200); a bare host:port '
             'uses https when use_ssl is set. List several nodes of one '
             'cluster to survive the loss of one.'),
    cfg.StrOpt(
        'index', default='freezer',
        regex=r'^[a-z0-9][a-z0-9_.-]*$',
        help='Name under which the documents are kept (an alias of the '
             'index freezer-manage creates, named <index>-v1). Change it '
             'to run several freezer-api deployments on one cluster. '
             'Lower case letters, digits, "_", "-" and "." only.'),
    cfg.IntOpt(
        'number_of_replicas', default=0, min=0,
        help='Copies of each shard on other nodes. Keep 0 on a single-node '
             'cluster (replicas could never be placed and the index would '
             'stay yellow); use 1 or more on a cluster of several nodes. '
             'Applied when the index is created and by "freezer-manage db '
             'update-settings".'),
    cfg.IntOpt(
        'number_of_shards', default=1, min=1,
        help='Primary shards of the index, fixed when it is created. One '
             'is right for any freezer deployment; raise it only for '
             'millions of backups spread over many data nodes.'),
    cfg.FloatOpt(
        'timeout', default=10.0, min=0.1,
        help='Seconds to wait for one answer from Elasticsearch before '
             'the request fails with 503. Raise it for a slow or busy '
             'cluster.'),
    cfg.FloatOpt(
        'query_timeout', default=8.0, min=0,
        help='Seconds a search may run in Elasticsearch (its "timeout" '
             'parameter) before it is stopped and the request fails with '
             '503, so that an expensive search does not go on after its '
             'client gave up. Keep it below timeout; 0 means no limit.'),
    cfg.IntOpt(
        'retries', default=2, min=0,
        help='Times a read that could not reach a node (connection '
             'refused or reset, 429, 502, 503 or 504) is sent again, to the '
             'next node when there are several. Raise it with the number '
             'of hosts. Writes and timed-out requests are never sent twice, '
             'since they may have been applied: they fail with 503.'),
    cfg.IntOpt(
        'conflict_retries', default=10, min=1,
        help='Attempts for one atomic change whose reads turned out '
             'stale in other ways than by a concurrent commit (which '
             'contention_timeout bounds) before the request fails with '
             '409.'),
    cfg.FloatOpt(
        'contention_timeout', default=30.0, min=0.1,
        help='Seconds an atomic change that keeps losing to the commits of '
             'other writers of the same document is run again, in turn '
             'with them (across processes), before the request fails with '
             '409; the writers of one document take turns long before '
             'that, unless the cluster is far too slow for them.'),
    cfg.IntOpt(
        'connections_per_node', default=10, min=1,
        help='HTTP connections kept open to each node per API process. '
             'Raise it with the number of threads serving requests.'),
    cfg.BoolOpt(
        'use_ssl', default=False,
        help='Use https for hosts given without a scheme (host:port). '
             'Hosts given as URLs keep their scheme.'),
    cfg.BoolOpt(
        'verify_certs', default=True,
        help='Check the certificates of https nodes. Turn off only for a '
             'test cluster with self-signed certificates.'),
    cfg.StrOpt(
        'ca_certs',
        help='File of CA certificates (PEM) that signed the nodes\' '
             'certificates, when they are not signed by a CA the system '
             'trusts.'),
    cfg.StrOpt(
        'http_auth', secret=True,
        help='"user:password" for HTTP basic authentication, when the '
             'cluster has security enabled.'),
    cfg.StrOpt(
        'refresh', default='true', choices=REFRESH_CHOICES,
        help='When a write becomes visible to lists and searches.'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
