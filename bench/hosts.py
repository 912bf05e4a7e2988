"""Writes when several API hosts share one store (issue 17, PostgreSQL).

``python -m bench.hosts [--hosts N] [--rounds R] [--duration S]``
(about 5 minutes with the defaults; PostgreSQL is started as the tests
start it, or ``FREEZER_TEST_POSTGRESQL_URL`` names one)

A SQLite store is a file of one host: one uwsgi instance serves it. A
PostgreSQL store is shared: here ``--hosts`` uwsgi instances of ours
(each as deployed, ``--processes`` x ``--threads``), simulating API hosts
behind a load balancer, share one PostgreSQL database. Each write scenario
of ``bench.run`` (create backup, PATCH job, session start+end) runs on
three targets in turns within every round:

``sqlite``       one instance on a SQLite file;
``postgresql``   one instance on PostgreSQL;
``postgresql xN`` N instances on the same PostgreSQL database, at once.

The same total of wrk connections (``--connections``) is spread over the
instances of a target, and each instance gets its own jobs and sessions to
write (as the hosts of a fleet would), so that what is measured is the
store shared by several hosts, not two clients fighting over one job. All
of it shares this machine's cores: the figures say what a shared store
costs and whether adding hosts pays, not what N machines would serve.
Printed per scenario: the rate (summed over the instances), the p99 (the
worst instance's), the API's CPU per write (all instances, not
PostgreSQL's own), and the ratios against SQLite.
"""

import argparse
import concurrent.futures
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time

from bench import data
from bench import deploy
from bench import load
from bench import run as bench_run

WRITES = ['create_backup', 'patch_job', 'session_cycle']


def split_ids(ids, part, parts):
    """The ids one of ``parts`` instances writes: its share of the jobs to
    PATCH and of the sessions (every list, for the rest)."""
    mine = dict(ids)
    for key in ('patch_jobs', 'sessions'):
        mine[key] = ids[key][part::parts]
    return mine


def shares(connections, instances):
    """The wrk connections of each of ``instances``: ``connections`` in
    all, as evenly as they go."""
    return [connections // instances + (n < connections % instances)
            for n in range(instances)]


def run_target(target, scenario, duration, timeout):
    """Load every instance of ``target`` at once; return one summary."""
    services = target['services']
    with concurrent.futures.ThreadPoolExecutor(len(services)) as pool:
        results = list(pool.map(
            lambda n: load.run(services[n], target['luas'][n], scenario,
                               target['shares'][n], duration,
                               timeout=timeout),
            range(len(services))))
    cpu_total = sum((r['cpu_ms'] or 0) * r['rate'] for r in results)
    rate = sum(r['rate'] for r in results)
    return {
        'rate': rate,
        'p99_ms': max(r['p99_ms'] for r in results),
        'max_ms': max(r['max_ms'] for r in results),
        'cpu_ms': cpu_total / rate if rate else None,
        'errors': sum(r['errors'] for r in results),
        'unsuccessful': sum(r['unsuccessful'] for r in results),
        'per_instance': [round(r['rate'], 1) for r in results],
    }


def start_services(prefix, store, instances, workdir, args):
    """``instances`` uwsgi services of ours on one store."""
    return [deploy.start_ours(workdir, bench_run._port(), store,
                              args.processes, args.threads,
                              name=f'{prefix}-{n}')
            for n in range(instances)]


def table(results):
    lines = []
    header = (f'{"scenario":15} {"target":16} {"rate /s":>9} '
              f'{"vs SQLite":>9} {"p99 ms":>8} {"CPU ms/w":>9} '
              f'{"errors":>6}  per instance')
    lines += [header, '-' * len(header)]
    for scenario in results:
        base = results[scenario]['sqlite']['rate']
        for name, row in results[scenario].items():
            ratio = row['rate'] / base if base else 0.0
            lines.append(
                f'{scenario:15} {name:16} {row["rate"]:9.1f} '
                f'{ratio:8.2f}x {row["p99_ms"]:8.1f} '
                f'{row["cpu_ms"] or 0:9.2f} '
                f'{row["errors"] + row["unsuccessful"]:6d}  '
                f'{", ".join(str(r) for r in row["per_instance"])}')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.hosts',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--hosts', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=8)
    parser.add_argument('--connections', type=int, default=8)
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--timeout', type=int, default=30)
    parser.add_argument('--scenarios', default=','.join(WRITES),
                        help='comma-separated, of ' + ', '.join(WRITES))
    parser.add_argument('--warmup', type=int, default=1,
                        help='seconds of each scenario on each target '
                        'before the rounds (0: none)')
    parser.add_argument('--small', action='store_true',
                        help='a tenth of the base data (harness checks)')
    parser.add_argument('--name', default='hosts')
    parser.add_argument('--output', default=os.path.join(
        deploy.HERE, 'results'))
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(',') if s]
    if not scenarios or not set(scenarios) <= set(WRITES):
        parser.error(f'--scenarios: some of {", ".join(WRITES)}')
    load.wrk_binary()
    runs = {scenario: {} for scenario in scenarios}
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix='freezer-bench-hosts-'))
        targets = []
        sqlite_of = stack.enter_context(
            bench_run._store_servers('sqlite', stack))
        pg_of = stack.enter_context(
            bench_run._store_servers('postgresql', stack))
        shared_pg = pg_of(workdir, 'shared')
        for name, store, instances in (
                ('sqlite', sqlite_of(workdir, 'sqlite'), 1),
                ('postgresql', pg_of(workdir, 'single'), 1),
                (f'postgresql x{args.hosts}', shared_pg, args.hosts)):
            services = start_services(name.replace(' ', '-'), store,
                                      instances, workdir, args)
            for service in services:
                stack.callback(service.stop)
            started = time.monotonic()
            ids = data.fill(services[0].url, small=args.small)
            bench_run.log(f'{name}: {instances} instance(s), filled in '
                          f'{time.monotonic() - started:.0f}s')
            # the Lua file of an instance knows its count of connections
            share = shares(args.connections, instances)
            targets.append({'name': name, 'services': services,
                            'shares': share, 'luas': [
                                data.write_lua(
                                    os.path.join(workdir,
                                                 f'{services[n].name}.lua'),
                                    split_ids(ids, n, instances), share[n])
                                for n in range(instances)]})
        for target in targets if args.warmup else ():  # not measured
            for scenario in scenarios:
                run_target(target, scenario, args.warmup, args.timeout)
        for rnd in range(args.rounds):
            order = targets if rnd % 2 == 0 else targets[::-1]
            for scenario in scenarios:
                for target in order:
                    result = run_target(target, scenario, args.duration,
                                        args.timeout)
                    runs[scenario].setdefault(target['name'], []).append(
                        result)
                    bench_run.log(
                        f'round {rnd + 1} {scenario:14} '
                        f'{target["name"]:16} {result["rate"]:8.1f}/s '
                        f'p99 {result["p99_ms"]:7.1f} ms '
                        f'cpu {result["cpu_ms"] or 0:5.2f} ms '
                        f'err {result["errors"]}')
    results = {
        scenario: {
            name: {
                'rate': statistics.median(r['rate'] for r in rows),
                'p99_ms': statistics.median(r['p99_ms'] for r in rows),
                'max_ms': max(r['max_ms'] for r in rows),
                'cpu_ms': statistics.median(r['cpu_ms'] or 0 for r in rows),
                'errors': sum(r['errors'] for r in rows),
                'unsuccessful': sum(r['unsuccessful'] for r in rows),
                'per_instance': [
                    round(statistics.median(r['per_instance'][n]
                                            for r in rows), 1)
                    for n in range(len(rows[0]['per_instance']))],
            } for name, rows in by_target.items()}
        for scenario, by_target in runs.items()}
    text = table(results)
    heading = (f'Run of {time.strftime("%Y-%m-%dT%H:%M:%S")} on '
               f'{os.cpu_count()} CPUs ({bench_run.machine()["cpu_model"]}), '
               f'Python '
               f'{platform.python_version()}; uwsgi {args.processes} '
               f'processes x {args.threads} threads per instance, '
               f'{args.connections} connections per target, '
               f'{args.rounds} rounds of {args.duration} s, medians.')
    print(heading)
    print(text)
    base = os.path.join(args.output, args.name)
    bench_run.save_json({'args': vars(args), 'machine': bench_run.machine(),
                         'results': results, 'runs': runs}, base + '.json')
    with open(base + '.rst', 'w') as handle:
        handle.write(heading + '\n\n::\n\n' + '\n'.join(
            '    ' + line for line in text.splitlines()) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
