"""What an audit record can cost an Elasticsearch node, at the least.

``python -m bench.es_floor [--rounds N] [--requests N]``

Issue 16 budgets the audit trail at 10 % of a write. On Elasticsearch an
audited change costs several times a bare one (``bench.audit_http --store
elasticsearch``). This separates what any trail kept as documents of its
own must cost from what the crash-safe way of writing it costs. On one
node started as the tests start it (one shard, no replica per index), it
sends three kinds of write and measures the node's CPU per write:

``bare``
    one document in a bulk request: a write without a trail;
``doc+record``
    the document and a record in one bulk request: the least a trail of
    separate documents can cost (no atomicity: a crash or a failed item
    can leave one without the other);
``intent+doc+record``
    an intent document first, then the document and the record, then
    the intent's deletion: three requests, the shape of the driver's
    journal (``storage/elasticsearch/journal.py``), which makes the pair
    atomic across failures.

``doc+embedded``
    the record inside the document's own write, in a field the node
    keeps but does not index (``audit_pending``, ``enabled: false``): the
    least a trail can cost that needs no second document per write (a
    later sealer would chain the records; deletions would leave
    tombstones);
``doc+embedded+sealed``
    as ``doc+embedded``, and every ``SEAL_BATCH`` writes the records so
    far written into the records index in one bulk request, as such a
    sealer would (its search for them and the chaining not counted).

With ``refresh=false`` (the driver's ``on_search``) and ``refresh=true``
(its default, in which a write waits for its index to be refreshed).
The kinds take turns every ``--block`` writes in a random order; printed:
the median over the rounds of the node's CPU per write, and the median
of the rounds' paired cost against ``bare``, with its 95 % interval
(``bench.run.paired_cost``).
"""

import argparse
import contextlib
import json
import os
import random
import statistics
import uuid

import urllib3

from bench import deploy
from bench import run as bench_run

DOCUMENT = {
    'backup_name': 'nightly', 'container': 'c', 'hostname': 'node1',
    'curr_backup_level': 0, 'fs_real_path': '/var/lib/mysql',
    'client_os': 'linux', 'time_stamp': 1700000000, 'mode': 'fs',
    'path_to_backup': '/var/lib/mysql', 'storage': 'swift',
    'project_id': 'bench', 'user_id': 'bench', 'job_id': 'j' * 32}
# a record as core.audit makes it, with values of the usual lengths
RECORD = {
    'id': 'r' * 32, 'project_id': 'bench', 'seq': 1, 'at': 1,
    'user_id': 'bench', 'user_project_id': 'bench', 'roles': ['member'],
    'method': 'POST', 'route': '/v2/{project_id}/backups',
    'request_id': 'req-' + 'x' * 36, 'kind': 'backup', 'doc_id': 'd' * 32,
    'action': 'created', 'fields': sorted(DOCUMENT), 'version': 1,
    'result': 'success', 'prev_hash': 'a' * 64, 'hash': 'b' * 64}
KINDS = ('bare', 'doc+record', 'intent+doc+record', 'doc+embedded',
         'doc+embedded+sealed')
# records a sealer writes in one request (doc+embedded+sealed)
SEAL_BATCH = 50


class Node:
    """Bulk requests to one node, over one HTTP connection pool."""

    def __init__(self, url, prefix='bench'):
        self.url = url.rstrip('/')
        self.http = urllib3.PoolManager(maxsize=1)
        self.seq = 0
        # records embedded in documents, not yet written by the "sealer"
        self.pending = []
        self.indices = tuple(f'{prefix}-{name}' for name in (
            'documents', 'records', 'intents'))

    def create_indices(self):
        settings = {'settings': {'number_of_shards': 1,
                                 'number_of_replicas': 0}}
        for index in self.indices:
            body = dict(settings)
            if index == self.indices[0]:
                # kept in _source, not indexed: no search reaches it
                body['mappings'] = {'properties': {'audit_pending': {
                    'type': 'object', 'enabled': False}}}
            answer = self.http.request(
                'PUT', f'{self.url}/{index}', body=json.dumps(body),
                headers={'Content-Type': 'application/json'})
            if answer.status != 200:
                raise RuntimeError(f'creating {index}: {answer.data!r}')

    def bulk(self, lines, refresh):
        body = ''.join(json.dumps(line) + '\n' for line in lines)
        answer = self.http.request(
            'POST', f'{self.url}/_bulk?refresh={refresh}', body=body,
            headers={'Content-Type': 'application/x-ndjson'})
        if answer.status != 200 or json.loads(answer.data)['errors']:
            raise RuntimeError(f'bulk failed: {answer.data[:300]!r}')

    def write(self, kind, refresh):
        document = [{'index': {'_index': self.indices[0],
                               '_id': uuid.uuid4().hex}}, DOCUMENT]
        if kind == 'bare':
            self.bulk(document, refresh)
            return
        self.seq += 1
        if kind.startswith('doc+embedded'):
            document[1] = dict(DOCUMENT, audit_pending=RECORD)
            self.bulk(document, refresh)
            if kind == 'doc+embedded+sealed':
                self.pending.append(self.seq)
                if len(self.pending) >= SEAL_BATCH:
                    self.seal()
            return
        record = [{'create': {'_index': self.indices[1],
                              '_id': f'bench:{self.seq}'}}, RECORD]
        if kind == 'doc+record':
            self.bulk(document + record, refresh)
            return
        intent = uuid.uuid4().hex
        # NOTE: as the journal does, the intent without a refresh
        self.bulk([{'create': {'_index': self.indices[2], '_id': intent}},
                   {'changes': [DOCUMENT], 'records': [RECORD]}], 'false')
        self.bulk(document + record, refresh)
        self.bulk([{'delete': {'_index': self.indices[2], '_id': intent}}],
                  'false')

    def seal(self):
        """Write the pending records, in one request without a refresh."""
        lines = []
        for seq in self.pending:
            lines += [{'create': {'_index': self.indices[1],
                                  '_id': f'bench:{seq}'}}, RECORD]
        self.pending = []
        if lines:
            self.bulk(lines, 'false')


def measure(node, refresh, rounds, requests, block):
    """kind -> [node CPU ms per write, one per round].

    A round is ``requests`` writes of every kind, in blocks of ``block``
    writes, the kinds of a block taking turns in a random order: the node
    changes speed in phases, and does part of a write's work (merges,
    refreshes) after answering, which spills over into the next block."""
    cpu = {kind: [] for kind in KINDS}
    shuffle = random.Random(1).shuffle
    # the node's processes, found once: this clock is read every block
    pids = deploy.elasticsearch_pids()
    if not pids:
        raise RuntimeError('no Elasticsearch process found')
    for kind in KINDS:
        for _ in range(block):  # warm
            node.write(kind, refresh)
    for number in range(rounds):
        used = dict.fromkeys(KINDS, 0.0)
        for _ in range(requests // block):
            order = list(KINDS)
            shuffle(order)
            for kind in order:
                before = deploy.cpu_seconds(pids)
                for _ in range(block):
                    node.write(kind, refresh)
                used[kind] += deploy.cpu_seconds(pids) - before
        for kind in KINDS:
            cpu[kind].append(used[kind] / (requests // block * block) * 1e3)
        bench_run.log(f'es_floor refresh={refresh} round {number + 1} ' +
                      ' '.join(f'{kind} {cpu[kind][-1]:.2f} ms'
                               for kind in KINDS))
    return cpu


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.es_floor')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--requests', type=int, default=400,
                        help='writes of each kind per round')
    parser.add_argument('--block', type=int, default=20,
                        help='writes of one kind in a row')
    parser.add_argument('--refresh', default='false,true',
                        help='the refresh modes, in order')
    parser.add_argument('--output', default=os.path.join(
        deploy.HERE, 'results', 'es-floor.json'))
    args = parser.parse_args(argv)
    results = bench_run.new_results(args, refresh={})
    with contextlib.ExitStack() as stack:
        store_of = stack.enter_context(
            bench_run._store_servers('elasticsearch', stack))
        node = Node(store_of(None, 'floor')['es_hosts'])
        node.create_indices()
        for refresh in args.refresh.split(','):
            cpu = measure(node, refresh, args.rounds, args.requests,
                          args.block)
            base = statistics.median(cpu['bare'])
            rows = {}
            line = f'refresh={refresh}:'
            for kind in KINDS:
                median = statistics.median(cpu[kind])
                paired, low, high = bench_run.paired_cost(
                    cpu[kind], cpu['bare'])
                rows[kind] = {'node_cpu_ms': median,
                              'cost_pct': 100.0 * (median / base - 1),
                              'paired_cost_pct': paired,
                              'paired_cost_interval_pct': [low, high],
                              'rounds': cpu[kind]}
                line += (f'\n  {kind:20} {median:6.2f} ms  '
                         f'paired {paired:+5.0f} %')
                if low is not None:
                    line += f' [{low:+.0f} .. {high:+.0f}]'
            print(line)
            results['refresh'][refresh] = rows
    bench_run.save_json(results, args.output)
    return 0


if __name__ == '__main__':
    bench_run.run_timed(main)
