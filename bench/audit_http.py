"""What the audit trail and the metrics cost a write, as a client sees it.

    python -m bench.audit_http [--rounds N] [--duration S]

``bench.audit_cost`` times the write scenarios in process, where a request
costs only the application's own work: its figure is an upper bound. This
one serves each *side* (``bare``: no audit trail, no metrics, no run
ledger; ``audit+metrics``: those two on, the ledger off, as the issue
budgets them; see ``bench.audit_cost.SIDES``) as a deployment does: uwsgi,
``--processes`` x ``--threads``, the configuration file and paste pipeline
of ``freezer_api.cmd.wsgi``, each side on its own SQLite store filled with
``bench.data`` (``--store elasticsearch``: its own index of one node,
whose CPU then counts with the servers'). wrk plays the write scenarios
of ``bench.run`` (create backup, PATCH job, session start+end) on both
sides in turns, the order alternating every round. For each scenario it
prints the median over the rounds of the servers' CPU per operation
(every uwsgi process, from /proc) and of the operations per second, and
the cost of ``audit+metrics`` against ``bare`` for both; then the median
of the rounds' paired CPU ratios (the two sides of a round run back to
back, so the phases in which this machine changes speed fall on both)
with its 95 % interval. Many short rounds (``--rounds 40 --duration 2``)
resolve the cost better than a few long ones.
"""

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import tempfile

from bench import audit_cost
from bench import deploy
from bench import load
from bench import run as bench_run

SCENARIOS = ('create_backup', 'patch_job', 'session_cycle')
SIDES = ('bare', 'audit+metrics')


def start_side(side, workdir, processes, threads, store_of=None):
    """One uwsgi service of ``side`` on its own store: a SQLite file, or
    (``store_of``) an index of the Elasticsearch node."""
    folder = os.path.join(workdir, side.replace('+', '-'))
    os.makedirs(folder)
    conf = os.path.join(folder, 'freezer-api.conf')
    text = f'[DEFAULT]\nauth_strategy = noauth\nstate_path = {folder}\n'
    if store_of is None:
        text += (f'[database]\n'
                 f'connection = sqlite:///{folder}/freezer.sqlite\n')
    else:
        store = store_of(workdir, side.replace('+', '-'))
        text += (f'[storage]\ndriver = elasticsearch\n[elasticsearch]\n'
                 f'hosts = {store["es_hosts"]}\n'
                 f'index = {store["es_index"]}\n')
        if os.environ.get('FREEZER_BENCH_ES_REFRESH'):
            text += f'refresh = {os.environ["FREEZER_BENCH_ES_REFRESH"]}\n'
    metrics = 'metrics' in side
    if metrics:
        # every process counts (multiprocess mode), as deployed
        text += '[metrics]\nenabled = true\n'
    with open(conf, 'w') as handle:
        handle.write(text)
    env = deploy._env(folder, FREEZER_API_CONFIG_FILES=conf,
                      FREEZER_BENCH_SIDE=side)
    subprocess.run([os.path.join(deploy.OURS_VENV, 'bin', 'freezer-manage'),
                    '--config-file', conf, 'db', 'sync'],
                   env=env, check=True, capture_output=True, cwd=folder)
    port = bench_run._port()
    argv = deploy._uwsgi_argv(deploy.OURS_VENV, port, processes,
                              threads) + [
        '--pythonpath', deploy.REPO,
        '--module', 'bench.audit_wsgi:application']
    return deploy._serve(side, argv, env, port, folder)


class WithNode:
    """A service whose CPU includes the Elasticsearch node's: the node
    shares the machine, and most of a write's cost is its (both sides use
    one node, and run in turns)."""

    def __init__(self, service):
        self._service = service

    def __getattr__(self, name):
        return getattr(self._service, name)

    def cpu_seconds(self):
        return self._service.cpu_seconds() + node_cpu_seconds()


def node_cpu_seconds():
    """CPU seconds of the Elasticsearch processes of this machine (looked
    for every time: a node given by URL has no handle here)."""
    return deploy.cpu_seconds(deploy.elasticsearch_pids())


def _cost(values, base):
    return 100.0 * (statistics.median(values) / statistics.median(base) - 1)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.audit_http')
    bench_run.add_round_options(parser, rounds=5, duration=8)
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--sides', default=','.join(SIDES),
                        help='bare and the sides to compare with it (of '
                        'bench.audit_cost.SIDES)')
    parser.add_argument('--store', choices=('sqlite', 'elasticsearch'),
                        default='sqlite',
                        help='elasticsearch: both sides on one node started '
                        'as the tests do (FREEZER_BENCH_ES_REFRESH picks '
                        'the refresh mode); CPU then includes the node\'s')
    parser.add_argument('--output', default=os.path.join(
        deploy.HERE, 'results', 'audit-http.json'))
    args = parser.parse_args(argv)
    sides = [side for side in args.sides.split(',') if side]
    if sides[0] != 'bare' or not set(sides) <= set(audit_cost.SIDES):
        parser.error(f'--sides: bare first, then some of '
                     f'{", ".join(audit_cost.SIDES)}')
    load.wrk_binary()
    results = bench_run.new_results(args, scenarios={})
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix='freezer-bench-audit-'))
        targets = []
        store_of = None
        if args.store == 'elasticsearch':
            store_of = stack.enter_context(
                bench_run._store_servers('elasticsearch', stack))
        for side in sides:
            service = start_side(side, workdir, args.processes, args.threads,
                                 store_of)
            stack.callback(service.stop)
            if store_of is not None:
                service = WithNode(service)
            targets.append(bench_run.target(side, service, os.path.join(
                workdir, f'{side}.lua'.replace('+', '-')), args))
        bench_run.warm_up(targets, SCENARIOS, args)
        _, runs = bench_run.alternate(targets, SCENARIOS, args, args.rounds,
                                      'audit')
    print(f'\nWrite cost against bare on {args.store}'
          + (' (CPU: uwsgi and the node)' if store_of else '') +
          f', {args.processes} processes x '
          f'{args.threads} threads, {args.connections} connections, '
          f'{args.rounds} rounds of {args.duration} s (medians)')
    print(f'{"scenario":15} {"side":14} {"bare CPU ms":>11} '
          f'{"side CPU ms":>11} {"CPU cost":>8} {"bare/s":>8} '
          f'{"side/s":>8} {"rate cost":>9}  paired CPU cost (95 %)')
    for scenario, side in itertools.product(SCENARIOS, sides[1:]):
        bare = runs[f'bare/{scenario}']
        audited = runs[f'{side}/{scenario}']
        errors = sum(r['errors'] + r['unsuccessful'] for r in bare + audited)
        cpu_b = [r['cpu_ms'] for r in bare]
        cpu_a = [r['cpu_ms'] for r in audited]
        rate_b = [r['rate'] for r in bare]
        rate_a = [r['rate'] for r in audited]
        # a lower rate is a cost: count it as the time per operation
        rate_cost = 100.0 * (statistics.median(rate_b) /
                             statistics.median(rate_a) - 1)
        paired, low, high = bench_run.paired_cost(cpu_a, cpu_b)
        row = {'side': side, 'bare_cpu_ms': statistics.median(cpu_b),
               'side_cpu_ms': statistics.median(cpu_a),
               'cpu_cost_pct': _cost(cpu_a, cpu_b),
               'bare_rate': statistics.median(rate_b),
               'side_rate': statistics.median(rate_a),
               'rate_cost_pct': rate_cost,
               'paired_cpu_cost_pct': paired,
               'paired_cpu_cost_interval_pct': [low, high],
               'errors': errors,
               'runs': {'bare': bare, side: audited}}
        results['scenarios'][f'{side}/{scenario}'] = row
        print(f'{scenario:15} {side:14} {row["bare_cpu_ms"]:11.2f} '
              f'{row["side_cpu_ms"]:11.2f} {row["cpu_cost_pct"]:+7.1f}% '
              f'{row["bare_rate"]:8.1f} {row["side_rate"]:8.1f} '
              f'{rate_cost:+8.1f}%  {paired:+6.1f}% ' +
              (f'[{low:+.1f} .. {high:+.1f}]' if low is not None else '') +
              (f'  ({errors} errors)' if errors else ''))
    bench_run.save_json(results, args.output)
    return 0


if __name__ == '__main__':
    bench_run.run_timed(main)
