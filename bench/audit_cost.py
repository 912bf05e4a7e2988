"""What the audit trail, the metrics and the run ledger cost a write.

``python -m bench.audit_cost [--rounds N] [--ops N] [--sides ...]``
builds the API several times over one fresh SQLite store (the real
driver, WAL, fsync as configured), once per *side*: a set of features
on, the others off as if they had never been merged --

``bare``
    no audit trail (the storage is not wrapped, no actor middleware),
    no metrics middleware, no run ledger;
``audit``, ``metrics``, ``ledger``
    that feature alone;
``audit+metrics``
    the two the issue budgets (at most 10 % of a write), together;
``all``
    everything (metrics are off by default in a deployment).

It times the write scenarios of ``bench.run`` -- create backup, PATCH job,
session cycle (start then end) -- on every side, the sides taking turns
every operation in a random order. In process there is no HTTP, so the
relative cost printed is an upper bound of what a client sees; no scrape
is made (``bench.metrics`` measures scrapes). Printed per scenario and
side: the median microseconds of this process's CPU per operation over
the rounds (wall clock is disturbed by fsync and the other work on the
machine), and the cost against ``bare``: the ratio of the medians and
the middle half of the rounds' ratios. (Turns every operation, not every
round: this machine changes speed in phases, which then fall on all the
sides alike.)

``--writers N`` makes the operations take turns over N drivers of the
store, as N API processes (each keeps its own caches, the audit chain
head among them).

``--profile SIDE`` instead runs each scenario ``--ops`` times on that
side under cProfile and prints where the time goes.

Run against an older tree (``PYTHONPATH=<tree> python bench/audit_cost.py
--sides bare``), only ``bare`` needs nothing this tree added.
"""

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from unittest import mock

if __package__ in (None, ''):
    # run as a file (against another tree on PYTHONPATH)
    sys.path.append(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

import falcon.testing  # noqa: E402
from oslo_config import cfg  # noqa: E402

from freezer_api import conf as conf_pkg  # noqa: E402
from freezer_api import storage  # noqa: E402
from freezer_api.api import app as app_module  # noqa: E402
from freezer_api.api import context  # noqa: E402

PROJECT = 'bench-project'
HEADERS = {'X-User-Id': 'bench', 'X-Project-Id': PROJECT,
           'X-Roles': 'member,reader', 'Content-Type': 'application/json'}
BACKUP = {'container': 'c', 'hostname': 'node1', 'backup_name': 'nightly',
          'curr_backup_level': 0, 'fs_real_path': '/var/lib/mysql',
          'client_os': 'linux', 'time_stamp': 1700000000, 'mode': 'fs',
          'path_to_backup': '/var/lib/mysql', 'storage': 'swift'}
# side -> (audit, metrics, ledger)
SIDES = {
    'bare': (False, False, False),
    'audit': (True, False, False),
    'metrics': (False, True, False),
    'audit+metrics': (True, True, False),
    'ledger': (False, False, True),
    'all': (True, True, True),
}


def make_conf(workdir, metrics=False):
    conf = cfg.ConfigOpts()
    conf_pkg.configure(conf)
    conf([], project='freezer-api', default_config_files=[])
    conf.set_override('state_path', workdir)
    conf.set_override('auth_strategy', 'noauth')
    conf.set_override('connection', f'sqlite:///{workdir}/bench.sqlite',
                      group='database')
    if metrics:
        conf.set_override('enabled', True, group='metrics')
    return conf


class _Nothing:
    """A middleware in place of one taken out (falcon wants a method)."""

    def process_request(self, req, resp):
        pass


@contextlib.contextmanager
def _features(audit, metrics, ledger):
    """While building an app: take out the features that are off."""
    with contextlib.ExitStack() as stack:
        if not audit and hasattr(app_module, 'audit_api'):
            stack.enter_context(mock.patch.object(
                app_module.audit, 'AuditedStorage',
                lambda driver, **kwargs: driver))
            stack.enter_context(mock.patch.object(
                app_module.audit_api, 'AuditActor', _Nothing))
        if not ledger and hasattr(app_module, 'health_settings'):
            from freezer_api.core import service
            stack.enter_context(mock.patch.object(
                service, 'RunLedger', lambda *args: None))
        yield


def make_clients(workdir, sides, writers=1):
    """Per side, ``writers`` test clients over as many drivers of one
    store (as many API processes)."""
    drivers = [storage.load_driver(make_conf(workdir))
               for _ in range(writers)]
    clients = {}
    for side in sides:
        audit, metrics, ledger = SIDES[side]
        conf = make_conf(workdir, metrics)
        clients[side] = []
        for driver in drivers:
            with _features(audit, metrics, ledger):
                app = app_module.create_app(conf, driver)
            clients[side].append(falcon.testing.TestClient(
                context.NoAuthMiddleware(app, conf)))
    return clients, drivers


def call(client, method, path, body=None):
    resp = client.simulate_request(
        method, f'/v2/{PROJECT}{path}', headers=HEADERS,
        body=None if body is None else json.dumps(body))
    assert resp.status_code < 300, (method, path, resp.status, resp.text)
    return resp.json


def setup(client):
    call(client, 'POST', '/clients',
         {'client_id': 'bench_node1', 'hostname': 'node1'})
    job = call(client, 'POST', '/jobs', {
        'client_id': 'bench_node1', 'description': 'bench',
        'job_actions': [{'freezer_action': {
            'action': 'backup', 'mode': 'fs', 'backup_name': 'b',
            'path_to_backup': '/etc', 'container': 'c'}}]})['job_id']
    session = call(client, 'POST', '/sessions',
                   {'description': 'bench', 'schedule': {
                       'schedule_interval': '1 days'}})['session_id']
    call(client, 'PUT', f'/sessions/{session}/jobs/{job}')
    return job, session


def scenarios(job, session):
    """name -> run(client): one operation of the scenario."""
    turn = iter(range(10 ** 9))
    tag = [0]

    # as an agent posts it (and as bench.run does): naming its job
    backup = dict(BACKUP, job_id=job)

    def create_backup(client):
        call(client, 'POST', '/backups', backup)

    def patch_job(client):
        call(client, 'PATCH', f'/jobs/{job}', {'job_schedule': {
            'status': 'scheduled', 'result': 'success',
            'current_pid': next(turn)}})

    def session_cycle(client):
        started = call(client, 'POST', f'/sessions/{session}/action', {
            'start': {'job_id': job, 'current_tag': tag[0]}})
        tag[0] = started['session_tag']
        call(client, 'POST', f'/sessions/{session}/action', {
            'end': {'job_id': job, 'current_tag': tag[0],
                    'result': 'success'}})

    return {'create_backup': create_backup, 'patch_job': patch_job,
            'session_cycle': session_cycle}


def measure(clients, runs, rounds, ops):
    """(scenario, side) -> [CPU us per op, one per round].

    The sides take turns every operation (in a random order), not every
    round: this machine changes speed in phases of seconds to minutes, and
    operations timed side by side see the same phase. A round is ``ops``
    operations of every side."""
    sides = list(clients)
    cpu = {(name, side): [] for name in runs for side in sides}
    clock = time.process_time_ns
    shuffle = random.Random(1).shuffle
    for name, run in runs.items():
        for side in sides:
            run(clients[side][-1])  # warm
        for _ in range(rounds):
            used = dict.fromkeys(sides, 0)
            for number in range(ops):
                # NOTE: a random order: a fixed rotation lines the
                # collector's runs up with some sides.
                order = sides[:]
                shuffle(order)
                for side in order:
                    writers = clients[side]
                    start = clock()
                    run(writers[number % len(writers)])
                    used[side] += clock() - start
            for side in sides:
                cpu[(name, side)].append(used[side] / ops / 1e3)
    return cpu


def report(cpu, runs, sides):
    for name in runs:
        print(name)
        base = cpu.get((name, 'bare'))
        base_median = statistics.median(base) if base else None
        for side in sides:
            values = cpu[(name, side)]
            median = statistics.median(values)
            line = f'  {side:14} CPU {median:6.0f} us'
            if base and side != 'bare':
                ratios = [a / b - 1 for a, b in zip(values, base)]
                low, _, high = statistics.quantiles(ratios, n=4)
                line += (f'  {100 * (median / base_median - 1):+6.1f}%'
                         f'  (rounds\' middle half {100 * low:+.1f}% .. '
                         f'{100 * high:+.1f}%)')
            print(line)


def profile(clients, runs, side, ops, top):
    writers = clients[side]
    for name, run in runs.items():
        for number in range(ops // 5 + 1):
            run(writers[number % len(writers)])  # warm
        profiler = cProfile.Profile()
        profiler.enable()
        for number in range(ops):
            run(writers[number % len(writers)])
        profiler.disable()
        print(f'== {name} on {side}, {ops} operations')
        stats = pstats.Stats(profiler)
        stats.sort_stats('tottime').print_stats(top)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=40)
    parser.add_argument('--ops', type=int, default=25)
    parser.add_argument('--sides', nargs='+', choices=list(SIDES),
                        default=list(SIDES))
    parser.add_argument('--profile', choices=list(SIDES),
                        help='profile the scenarios on this side instead')
    parser.add_argument('--top', type=int, default=30,
                        help='functions printed per profile')
    parser.add_argument('--writers', type=int, default=1,
                        help='drivers over the store, taking turns per '
                             'operation (as API processes do)')
    args = parser.parse_args(argv)
    sides = [args.profile] if args.profile else args.sides
    with tempfile.TemporaryDirectory() as workdir:
        clients, drivers = make_clients(workdir, sides, args.writers)
        try:
            runs = scenarios(*setup(clients[sides[0]][0]))
            if args.profile:
                profile(clients, runs, args.profile, args.ops, args.top)
                return
            cpu = measure(clients, runs, args.rounds, args.ops)
            print(f'CPU per operation, medians of {args.rounds} rounds of '
                  f'{args.ops}, {args.writers} writer(s), against bare')
            report(cpu, runs, sides)
        finally:
            for driver in drivers:
                driver.close()


if __name__ == '__main__':
    main()
