"""The floor under a create: what the store alone costs, without HTTP.

``python -m bench.floor [--rounds N] [--ops N]``

Issue 17 asks SQLite writes for a third of the do-nothing ceiling of the
harness (uwsgi 2 x 2 serving an app that answers 200 at once, under the
same wrk). At 12 000-14 000 requests/s on 2 cores that leaves 0.43-0.49 ms
of the machine's CPU for a whole create, of which the do-nothing request
itself (uwsgi, HTTP, wrk) already takes a third. This measures what the
storage layer alone takes for an agent's backup document, in one thread
of one process over a fresh SQLite store (the real driver: WAL, the
search index of every leaf, the commit):

``create``        ``driver.create`` of the document;
``create+audit``  the same insert and the audit record issue 16 requires
                  in the same transaction (``append_audit`` with the
                  record sealed as the API seals it).

Printed: the median over the rounds of this process's CPU per create.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid

from freezer_api import storage
from freezer_api.cmd import common
from freezer_api.cmd import manage
from freezer_api.core import audit

from bench import audit_cost

PROJECT, USER = 'bench-project', 'bench'


ACTOR = audit.Actor(USER, PROJECT, ('member',), 'POST',
                    '/v2/{project_id}/backups', 'req-bench')


def _entry(doc_id, at, doc):
    return audit.entry_for(ACTOR, at, 'insert', 'backups', doc_id, PROJECT,
                           1, None, doc)


def _backup(number):
    return dict(audit_cost.BACKUP, backup_name=f'name-{number % 100}',
                time_stamp=1_700_000_000 + number)


def create(driver, number):
    driver.create('backups', uuid.uuid4().hex, PROJECT, USER,
                  1_700_000_000_000_000 + number, _backup(number))


def create_audited(driver, number):
    doc_id = uuid.uuid4().hex
    at = 1_700_000_000_000_000 + number

    def change(txn):
        doc = _backup(number)
        txn.insert('backups', doc_id, PROJECT, USER, at, doc)
        txn.append_audit(PROJECT, [_entry(doc_id, at, doc)], audit.seal)

    driver.atomic(change)


VARIANTS = {'create': create, 'create+audit': create_audited}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.floor',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--ops', type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='freezer-bench-floor-') as tmp:
        conf_path = os.path.join(tmp, 'freezer-api.conf')
        with open(conf_path, 'w') as handle:
            handle.write(f'[database]\n'
                         f'connection = sqlite:///{tmp}/freezer.sqlite\n')
        if manage.main(['--config-file', conf_path, 'db', 'sync'],
                       out=open(os.devnull, 'w')) != 0:
            return 1
        driver = storage.load_driver(
            common.load_config(['--config-file', conf_path]))
        try:
            cpu = {name: [] for name in VARIANTS}
            number = 0
            for _ in range(args.rounds):
                for name, variant in VARIANTS.items():  # interleaved
                    started = time.process_time()
                    for _ in range(args.ops):
                        number += 1
                        variant(driver, number)
                    cpu[name].append(
                        (time.process_time() - started) / args.ops * 1e6)
        finally:
            driver.close()
    print(f'Storage alone, SQLite, one thread: CPU per create, medians of '
          f'{args.rounds} rounds of {args.ops}')
    for name, values in cpu.items():
        print(f'  {name:14} {statistics.median(values):6.0f} us '
              f'(rounds {min(values):.0f}-{max(values):.0f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
