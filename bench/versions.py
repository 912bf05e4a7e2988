"""This tree's service against another revision's, side by side.

``python -m bench.versions REV [--store sqlite] [--rounds 10]
[--duration 4] [--scenarios session_cycle,patch_job,create_backup]``

A change that claims to make writes faster is measured here: the
revision ``REV`` (``git archive``) and the working tree are each served
by uwsgi as ``bench.deploy.start_ours`` serves ours (2 processes x 2
threads, ``auth_strategy = noauth``), each on a store of its own made by
its own ``freezer-manage``, with the same documents (``bench.data``).
The two take turns on every scenario, round after round, the order
alternating, so that the machine's slow phases fall on both. Printed for
each scenario: the median over the rounds of the rate ratio (this tree
over ``REV``) with the lowest and highest round, and the median CPU per
operation of each side.
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile

from bench import deploy
from bench import load
from bench import run as bench_run

SIDES = ('this', 'then')
SCENARIOS = 'session_cycle,patch_job,create_backup'


def export(rev, folder):
    """The files of revision ``rev`` of this repository, in ``folder``."""
    archive = subprocess.run(['git', 'archive', rev], cwd=deploy.REPO,
                             check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', folder], input=archive, check=True)


def compare(runs, scenario):
    this, then = runs[f'this/{scenario}'], runs[f'then/{scenario}']
    ratios = [a['rate'] / b['rate'] for a, b in zip(this, then)
              if b['rate']]

    def cpu(rows):
        return statistics.median(r['cpu_ms'] for r in rows)

    return {'rate_ratio': statistics.median(ratios),
            'lowest': min(ratios), 'highest': max(ratios),
            'this_cpu_ms': cpu(this), 'then_cpu_ms': cpu(then),
            'errors': sum(r['errors'] + r['unsuccessful']
                          for r in this + then)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.versions')
    parser.add_argument('rev', help='the git revision to compare with')
    parser.add_argument('--store', choices=('sqlite', 'elasticsearch'),
                        default='sqlite')
    bench_run.add_round_options(parser, rounds=10, duration=4)
    parser.add_argument('--scenarios', default=SCENARIOS)
    parser.add_argument('--output', default=os.path.join(
        deploy.HERE, 'results', 'versions.json'))
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(',') if s]
    load.wrk_binary()
    results = bench_run.new_results(args, scenarios={})
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix='freezer-bench-versions-'))
        tree = os.path.join(workdir, 'tree')
        os.makedirs(tree)
        export(args.rev, tree)
        store_of = stack.enter_context(
            bench_run._store_servers(args.store, stack))
        targets = []
        for side in SIDES:
            folder = os.path.join(workdir, side)
            os.makedirs(folder)
            service = deploy.start_ours(
                folder, bench_run._port(), store_of(folder, side),
                name=side, pythonpath=tree if side == 'then' else None)
            stack.callback(service.stop)
            targets.append(bench_run.target(
                side, service, os.path.join(folder, 'scenario.lua'), args))
        bench_run.warm_up(targets, scenarios, args)
        _, runs = bench_run.alternate(targets, scenarios, args, args.rounds,
                                      'versions')
    print(f'\nThis tree against {args.rev} on {args.store}, '
          f'{args.rounds} rounds of {args.duration} s')
    print(f'{"scenario":15} {"rate this/then":>14} {"lowest":>7} '
          f'{"highest":>7} {"CPU ms this":>11} {"CPU ms then":>11}')
    for scenario in scenarios:
        row = results['scenarios'][scenario] = compare(runs, scenario)
        row['runs'] = {side: runs[f'{side}/{scenario}'] for side in SIDES}
        print(f'{scenario:15} {row["rate_ratio"]:14.2f} '
              f'{row["lowest"]:7.2f} {row["highest"]:7.2f} '
              f'{row["this_cpu_ms"]:11.3f} {row["then_cpu_ms"]:11.3f}')
    bench_run.save_json(results, args.output)
    return 0


if __name__ == '__main__':
    bench_run.run_timed(main)
