"""What the audit trail's SQL costs SQLite at the least, without the service.

``python -m bench.sqlite_floor [--rounds N] [--writes N] [--layouts ...]``

Two processes write one SQLite file (WAL, ``synchronous = NORMAL``) in
turns, as two uwsgi workers do; each transaction updates one of many
documents. Every commit by the other process makes SQLite drop this
connection's page cache, so each turn reads its B-tree paths again.
Layouts (the tables of ``storage/sqlalchemy/audit.py``, as plain DDL):

``bare``
    the document update alone;
``trail``
    plus, as the driver does on SQLite: read the project's chain head,
    advance it conditionally, insert the record (about 600 bytes of JSON)
    into a table keyed ``(project_id, seq)`` with an index on ``at``;
``without-rowid``
    the same with the record table ``WITHOUT ROWID`` (one B-tree fewer
    per record: no separate key index);
``trigger``
    the record table as in ``trail``, and the head advanced by a trigger
    on insert (one statement fewer from Python).

The layouts run in turns within each round; printed: the median over
the rounds of the two processes' CPU per transaction, and the median of
the rounds' paired cost against ``bare`` (``bench.run.paired_cost``).
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import sqlite3
import statistics
import tempfile
import time

from bench import deploy
from bench import run as bench_run

LAYOUTS = ('bare', 'trail', 'without-rowid', 'trigger')
DOCUMENT = json.dumps({f'field{n}': 'v' * 20 for n in range(60)})
# the canonical JSON of a record without its hash, of the usual size
RECORD = json.dumps({f'f{n:02}': 'x' * 20 for n in range(20)})
DOCUMENTS = 20_000
PROJECTS = 20


def create(path, layout):
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute('PRAGMA journal_mode = WAL')
        conn.execute('CREATE TABLE docs (pk INTEGER PRIMARY KEY, '
                     'id TEXT UNIQUE, version INTEGER, doc TEXT)')
        conn.execute('BEGIN')
        conn.executemany('INSERT INTO docs (id, version, doc) '
                         'VALUES (?, 1, ?)',
                         ((f'doc{n}', DOCUMENT) for n in range(DOCUMENTS)))
        conn.execute('COMMIT')
        if layout == 'bare':
            return
        conn.execute(
            'CREATE TABLE audit_records (project_id TEXT, seq INTEGER, '
            'at INTEGER NOT NULL, record TEXT NOT NULL, '
            'PRIMARY KEY (project_id, seq))'
            + (' WITHOUT ROWID' if layout == 'without-rowid' else ''))
        conn.execute('CREATE INDEX ix_audit_records_at ON audit_records (at)')
        conn.execute('CREATE TABLE audit_heads (project_id TEXT PRIMARY KEY,'
                     ' seq INTEGER NOT NULL, hash TEXT NOT NULL)')
        conn.executemany("INSERT INTO audit_heads VALUES (?, 0, 'genesis')",
                         ((f'p{n}',) for n in range(PROJECTS)))
        if layout == 'trigger':
            conn.execute(
                'CREATE TRIGGER audit_advance AFTER INSERT ON audit_records '
                'BEGIN '
                "SELECT RAISE(ABORT, 'the chain moved') FROM audit_heads "
                'WHERE project_id = NEW.project_id AND seq <> NEW.seq - 1; '
                'UPDATE audit_heads SET seq = NEW.seq, '
                "hash = json_extract(NEW.record, '$.hash') "
                'WHERE project_id = NEW.project_id; END')
    finally:
        conn.close()


def transaction(conn, layout, choose):
    conn.execute('BEGIN IMMEDIATE')
    doc_id = f'doc{choose(DOCUMENTS)}'
    pk, version, _ = conn.execute(
        'SELECT pk, version, doc FROM docs WHERE id = ?', (doc_id,)).fetchone()
    conn.execute('UPDATE docs SET doc = ?, version = ? '
                 'WHERE pk = ? AND version = ?',
                 (DOCUMENT, version + 1, pk, version))
    if layout != 'bare':
        project = f'p{choose(PROJECTS)}'
        seq, prev = conn.execute(
            'SELECT seq, hash FROM audit_heads WHERE project_id = ?',
            (project,)).fetchone()
        digest = hashlib.sha256(f'{prev}\n{RECORD}'.encode()).hexdigest()
        if layout != 'trigger':
            conn.execute('UPDATE audit_heads SET seq = ?, hash = ? '
                         'WHERE project_id = ? AND seq = ? AND hash = ?',
                         (seq + 1, digest, project, seq, prev))
        conn.execute('INSERT INTO audit_records VALUES (?, ?, ?, ?)',
                     (project, seq + 1, time.time_ns() // 1000,
                      f'{RECORD[:-1]},"hash":"{digest}"}}'))
    conn.execute('COMMIT')


def writer(path, layout, writes, seed, results):
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute('PRAGMA synchronous = NORMAL')
    choose = random.Random(seed).randrange
    started = time.process_time()
    for number in range(writes):
        transaction(conn, layout, choose)
        if number % 500 == 499:  # as WriterQueue does, outside the turn
            conn.execute('PRAGMA wal_checkpoint(PASSIVE)')
    results.put(time.process_time() - started)
    conn.close()


def measure(paths, layouts, rounds, writes):
    """layout -> [CPU us per transaction, one per round]."""
    cpu = {layout: [] for layout in layouts}
    seed = 0
    for number in range(rounds):
        order = list(layouts)
        random.Random(number).shuffle(order)
        for layout in order:
            results = multiprocessing.Queue()
            workers = []
            for _ in range(2):
                seed += 1
                workers.append(multiprocessing.Process(
                    target=writer,
                    args=(paths[layout], layout, writes, seed, results)))
            for process in workers:
                process.start()
            used = results.get() + results.get()
            for process in workers:
                process.join()
            cpu[layout].append(used / (2 * writes) * 1e6)
        bench_run.log(f'sqlite_floor round {number + 1} ' + ' '.join(
            f'{layout} {cpu[layout][-1]:.1f} us' for layout in layouts))
    return cpu


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.sqlite_floor')
    parser.add_argument('--rounds', type=int, default=9)
    parser.add_argument('--writes', type=int, default=3000,
                        help='transactions of each process per round')
    parser.add_argument('--layouts', default=','.join(LAYOUTS))
    parser.add_argument('--output', default=os.path.join(
        deploy.HERE, 'results', 'sqlite-floor.json'))
    args = parser.parse_args(argv)
    layouts = args.layouts.split(',')
    if layouts[0] != 'bare' or not set(layouts) <= set(LAYOUTS):
        parser.error(f'--layouts: bare first, then some of '
                     f'{", ".join(LAYOUTS)}')
    results = bench_run.new_results(args, layouts={})
    with tempfile.TemporaryDirectory(prefix='freezer-bench-sqlite-') as tmp:
        paths = {layout: os.path.join(tmp, f'{layout}.sqlite')
                 for layout in layouts}
        for layout in layouts:
            create(paths[layout], layout)
        cpu = measure(paths, layouts, args.rounds, args.writes)
    for layout in layouts:
        median = statistics.median(cpu[layout])
        paired, low, high = bench_run.paired_cost(cpu[layout], cpu['bare'])
        added = median - statistics.median(cpu['bare'])
        results['layouts'][layout] = {
            'cpu_us': median, 'added_us': added, 'paired_cost_pct': paired,
            'paired_cost_interval_pct': [low, high], 'rounds': cpu[layout]}
        line = (f'{layout:14} {median:6.1f} us per transaction '
                f'({added:+5.1f} us, paired {paired:+4.0f} %')
        line += f' [{low:+.0f} .. {high:+.0f}])' if low is not None else ')'
        print(line)
    bench_run.save_json(results, args.output)
    return 0


if __name__ == '__main__':
    bench_run.run_timed(main)
