"""How many freezer-schedulers one API host serves: the fleet simulation.

    python -m bench.fleet                    # every store, ours and upstream
    python -m bench.fleet --quick            # seconds: harness check only

A fleet of N simulated schedulers (``lua/fleet.lua``, played by wrk) polls
and runs its jobs as freezer-scheduler and freezer-agent do: each scheduler
polls its active jobs every 60 s (its default) with the scheduler's own
search body and paging, at a random phase, so that arrivals are spread as a
real fleet's are; once per ``--run-seconds`` it runs one of its two jobs:
PATCH running, the agent's backup metadata after ``--agent-seconds``, PATCH
scheduled; the first schedulers (one per session of the base data) run
their job inside a session (start and end around the agent's work).

For each store the fleet grows (its documents are added first: two jobs per
scheduler, through each side's own create-or-replace, ``POST
/jobs/{job_id}``), and each size N is loaded for ``--duration`` seconds. N
is served when no request failed, the p99 latency counted from the moment a
scheduler meant to send each request (so a server that falls behind shows,
not only slow requests: no coordinated omission) is under ``--p99-ms``, and
at most 1% of the requests left late. The search doubles N until a size
fails, then bisects to ``--precision``.

The generator's own CPU is measured (wrk's rusage) and reported next to the
server's: on 2 cores the two share the machine.
"""

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

import requests

from bench import data
from bench import deploy
from bench import load
from bench import run as bench_run

LUA = os.path.join(deploy.HERE, 'lua', 'fleet.lua')
NODE_FORMAT = 'fleet_node%06d'
JOBS_PER_NODE = 2
JOB_FORMAT = 'fleet-job-%06d-%d'
LATE_MS = 100


def node_id(s):
    return NODE_FORMAT % s


def job_id(s, j):
    return JOB_FORMAT % (s, j)


def node_job(s, j, run_seconds):
    """A job of scheduler ``s``, as the CLI creates it (active)."""
    doc = data.job_doc(node_id(s), j)
    doc['job_schedule']['schedule_interval'] = f'{run_seconds} seconds'
    doc['job_id'] = job_id(s, j)
    return doc


class Seeder:
    """Adds the jobs of schedulers [have, want) through the side's API."""

    def __init__(self, service, run_seconds, workers=8):
        self.base = f'{service.url}/v2/{deploy.PROJECT}'
        self.run_seconds = run_seconds
        self.workers = workers
        self.local = threading.local()
        self.have = 0

    def _post(self, path, body):
        session = getattr(self.local, 'session', None)
        if session is None:
            session = self.local.session = requests.Session()
        answer = session.post(f'{self.base}{path}', data=json.dumps(body),
                              headers=deploy.HEADERS, timeout=120)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f'seeding {path}: {answer.status_code} '
                               f'{answer.text[:300]}')

    def _node(self, s):
        # The scheduler registers itself, then its jobs are created.
        self._post('/clients/', {'client_id': node_id(s),
                                 'hostname': node_id(s)})
        for j in range(JOBS_PER_NODE):
            self._post(f'/jobs/{job_id(s, j)}',
                       node_job(s, j, self.run_seconds))

    def grow(self, want):
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(self._node, range(self.have, want)))
        self.have = max(self.have, want)


class InProcessSeeder(Seeder):
    """Ours: the same documents through our own core, in this process, on
    the service's store (much faster than HTTP; on Elasticsearch without a
    refresh per write, then one refresh)."""

    def __init__(self, conf_file, where, run_seconds, workers=4):
        from oslo_config import cfg

        from freezer_api import conf as conf_pkg
        from freezer_api.core import base
        from freezer_api.core.service import Services
        from freezer_api.storage import load_driver
        from freezer_api.storage.base import Scope
        conf = cfg.ConfigOpts()
        conf_pkg.configure(conf)
        conf(['--config-file', conf_file], project='freezer-api',
             default_config_files=[])
        if conf.storage.driver == 'elasticsearch':
            conf.set_override('refresh', 'false', group='elasticsearch')
        self.driver = load_driver(conf)
        self.services = Services(self.driver)
        self.caller = base.Caller(
            scope=Scope(deploy.PROJECT),
            owner=base.Owner(deploy.PROJECT, deploy.USER, 'bench'))
        self.where = where
        self.run_seconds = run_seconds
        self.workers = workers
        self.have = 0

    def _node(self, s):
        self.services.clients.create(
            self.caller, {'client_id': node_id(s), 'hostname': node_id(s)})
        for j in range(JOBS_PER_NODE):
            self.services.jobs.replace(self.caller, job_id(s, j),
                                       node_job(s, j, self.run_seconds))

    def grow(self, want):
        super().grow(want)
        if 'es_hosts' in self.where:
            # the seeding wrote without refreshing: make it all visible
            requests.post(f'{self.where["es_hosts"]}/'
                          f'{self.where["es_index"]}/_refresh',
                          timeout=600).raise_for_status()


def connections_for(n, args):
    """One wrk connection per ``--per-connection`` requests/s offered, so
    that each connection's requests stay well apart."""
    rate = n / args.poll_seconds * 2 + n / args.run_seconds * 3
    return max(4, min(args.max_connections,
                      math.ceil(rate / args.per_connection)))


def write_data(path, n, sessions, args, connections):
    table = {
        'prefix': f'/v2/{deploy.PROJECT}',
        'headers': dict(deploy.HEADERS),
        'threads': connections,
        'schedulers': n,
        'node_format': NODE_FORMAT,
        'job_format': JOB_FORMAT,
        'jobs_per_node': JOBS_PER_NODE,
        'sessions': [list(p) for p in sessions[:n]],
        'poll_seconds': args.poll_seconds,
        'run_seconds': args.run_seconds,
        'agent_seconds': args.agent_seconds,
        'late_ms': LATE_MS,
        'backup_body': json.dumps(data.CREATED_BACKUP),
    }
    with open(path, 'w') as handle:
        handle.write('return ' + data._lua(table) + '\n')
    return path


def run_fleet(service, lua_data, connections, seconds):
    """One load of ``seconds``; the figures of the fleet and both CPUs."""
    cpu_before = service.cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [load.wrk_binary(), '-t', str(connections), '-c',
            str(connections), '-d', f'{seconds}s', '--timeout', '30s',
            '-s', LUA, service.url, '--', lua_data]
    done = subprocess.run(argv, capture_output=True, text=True,
                          timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = service.cpu_seconds() - cpu_before
    wrk_cpu = ((after.ru_utime - children.ru_utime) +
               (after.ru_stime - children.ru_stime))
    line = next((ln for ln in done.stdout.splitlines()
                 if ln.startswith('BENCH ')), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f'wrk failed ({done.returncode}): '
                           f'{done.stdout[-2000:]} {done.stderr[-2000:]}')
    raw = json.loads(line[len('BENCH '):])
    wall = raw['duration_us'] / 1e6
    errors = (raw['connect_errors'] + raw['read_errors'] +
              raw['write_errors'] + raw['timeouts'] + raw['status_errors'] +
              raw['unexpected'])
    return {
        'rate': raw['requests'] / wall if wall else 0.0,
        'requests': raw['requests'],
        'errors': errors,
        'late_share': raw['late'] / raw['sent'] if raw['sent'] else 0.0,
        'fleet_p50_ms': raw['fleet_p50_ms'],
        'fleet_p99_ms': raw['fleet_p99_ms'],
        'fleet_max_ms': raw['fleet_max_ms'],
        'p99_ms': raw['p99_us'] / 1000.0,
        'kinds': raw['kinds'],
        'server_cpu_share': server_cpu / wall / os.cpu_count(),
        'wrk_cpu_share': wrk_cpu / wall / os.cpu_count(),
        'connections': connections,
    }


def served(result, args):
    return (result['errors'] == 0 and result['fleet_p99_ms'] < args.p99_ms
            and result['late_share'] <= 0.01)


def find_largest(service, seeder, sessions, workdir, args, tag):
    """Double N until a size is not served, then bisect."""
    tried = {}

    def trial(n):
        started = time.monotonic()
        seeder.grow(n)
        seeded = time.monotonic() - started
        conns = connections_for(n, args)
        lua_data = write_data(os.path.join(workdir, f'fleet-{n}.lua'), n,
                              sessions, args, conns)
        # A warm-up that is not measured: the workers' first requests.
        run_fleet(service, lua_data, conns, min(5, args.duration))
        result = run_fleet(service, lua_data, conns, args.duration)
        result.update(n=n, ok=served(result, args),
                      seeded_s=round(seeded, 1))
        bench_run.log(
            f'{tag} N={n:7d} {"served" if result["ok"] else "NOT served"}: '
            f'{result["rate"]:7.1f} req/s, fleet p99 '
            f'{result["fleet_p99_ms"]:7.1f} ms, max '
            f'{result["fleet_max_ms"]:7.1f} ms, late '
            f'{100 * result["late_share"]:.2f}%, errors {result["errors"]}, '
            f'server CPU {100 * result["server_cpu_share"]:.0f}%, wrk CPU '
            f'{100 * result["wrk_cpu_share"]:.0f}% of the machine')
        tried[n] = result
        return result['ok']

    low, high = 0, None
    n = args.start
    while n <= args.max_n:
        if trial(n):
            low = n
            n *= 2
        else:
            high = n
            break
    if high is not None:
        while high - low > max(1, low * args.precision):
            mid = (low + high) // 2
            if mid <= seeder.have and mid < low:
                break
            if trial(mid):
                low = mid
            else:
                high = mid
    return {'largest': low, 'first_not_served': high,
            'trials': [tried[k] for k in sorted(tried)]}


def bench_side(store, side, args, venv, stack, store_of):
    workdir = stack.enter_context(
        tempfile.TemporaryDirectory(prefix=f'freezer-fleet-{store}-'))
    service, where = bench_run.start_side(side, workdir, store_of,
                                          args.processes, args.threads, venv)
    stack.callback(service.stop)
    bench_run.log(f'fleet {store} {side}: filling the base documents')
    ids = data.fill(service.url, small=args.quick)
    if side == 'ours':
        seeder = InProcessSeeder(os.path.join(workdir, 'ours.conf'), where,
                                 args.run_seconds)
        stack.callback(seeder.driver.close)
    else:
        seeder = Seeder(service, args.run_seconds, args.seed_workers)
    return find_largest(service, seeder, ids['sessions'], workdir, args,
                        f'{store:13} {side:8}')


def render(results):
    machine = results['machine']
    lines = [
        f'Fleet simulation, {results["date"]}: {machine["cpus"]} cores '
        f'({machine["cpu_model"]}), uwsgi {results["args"]["processes"]} '
        f'processes x {results["args"]["threads"]} threads; each scheduler '
        f'polls every {results["args"]["poll_seconds"]} s and runs a job '
        f'every {results["args"]["run_seconds"]} s; served = no error, '
        f'fleet p99 < {results["args"]["p99_ms"]} ms, <= 1% sent late.',
        '',
        f'{"store":14} {"side":9} {"schedulers":>10} {"req/s":>8} '
        f'{"p99 ms":>7} {"server CPU":>10} {"wrk CPU":>8}',
    ]
    for key, found in results['fleet'].items():
        store, side = key.split('/')
        best = next((t for t in found['trials']
                     if t['n'] == found['largest']), None)
        if best is None:
            lines.append(f'{store:14} {side:9} {"none":>10}')
            continue
        lines.append(
            f'{store:14} {side:9} {found["largest"]:10d} '
            f'{best["rate"]:8.1f} {best["fleet_p99_ms"]:7.1f} '
            f'{100 * best["server_cpu_share"]:9.0f}% '
            f'{100 * best["wrk_cpu_share"]:7.0f}%')
    for what, failure in results.get('failures', {}).items():
        lines.append(f'FAILED {what}: {failure}')
    return '\n'.join(lines) + '\n'


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m bench.fleet',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--stores', default='sqlite,postgresql,elasticsearch')
    parser.add_argument('--upstream-stores', default='sqlite')
    parser.add_argument('--duration', type=int, default=20,
                        help='seconds of load per fleet size')
    parser.add_argument('--start', type=int, default=250,
                        help='first fleet size tried')
    parser.add_argument('--max-n', type=int, default=200_000)
    parser.add_argument('--precision', type=float, default=0.1,
                        help='bisect until the bounds are this close')
    parser.add_argument('--p99-ms', type=float, default=100.0)
    parser.add_argument('--poll-seconds', type=int, default=60)
    parser.add_argument('--run-seconds', type=int, default=3600)
    parser.add_argument('--agent-seconds', type=float, default=2.0)
    parser.add_argument('--per-connection', type=float, default=40.0,
                        help='requests/s offered per wrk connection')
    parser.add_argument('--max-connections', type=int, default=64)
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed-workers', type=int, default=8,
                        help='concurrent HTTP requests that add upstream\'s '
                        'fleet documents (its SQLite store was reported '
                        'malformed with 8)')
    parser.add_argument('--ours-only', action='store_true',
                        help='the same as --sides ours')
    parser.add_argument('--sides', default='ours,upstream',
                        help='which servers: ours, upstream or both')
    parser.add_argument('--quick', action='store_true',
                        help='SQLite, small fleets of 3 s: checks the '
                        'harness, measures nothing')
    parser.add_argument('--name', default=None)
    parser.add_argument('--output', default=os.path.join(deploy.HERE,
                                                         'results'))
    args = parser.parse_args(argv)
    if args.quick:
        # Short periods, so that every kind of request is sent in 3 s.
        args.stores, args.duration = 'sqlite', 3
        args.start, args.max_n, args.precision = 20, 40, 0.5
        args.poll_seconds, args.run_seconds, args.agent_seconds = 2, 2, 0.2
        args.upstream_stores = '' if args.ours_only else 'sqlite'
    args.stores = [s for s in args.stores.split(',') if s]
    args.sides = (['ours'] if args.ours_only else
                  [s for s in args.sides.split(',') if s])
    args.upstream_stores = [s for s in args.upstream_stores.split(',')
                            if s and 'upstream' in args.sides]
    return args


def main(argv=None, echo=True):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load.wrk_binary()
    venv = deploy.upstream_venv(bench_run.log) if args.upstream_stores \
        else None
    results = bench_run.new_results(args, fleet={})
    for store in args.stores:
        sides = (['ours'] if 'ours' in args.sides else []) + (
            ['upstream'] if store in args.upstream_stores else [])
        for side in sides:
            try:
                with contextlib.ExitStack() as stack:
                    store_of = stack.enter_context(
                        bench_run._store_servers(store, stack))
                    results['fleet'][f'{store}/{side}'] = bench_side(
                        store, side, args, venv, stack, store_of)
            except Exception as exc:  # report the others all the same
                bench_run.log(f'fleet {store} {side}: failed: {exc!r}')
                results.setdefault('failures', {})[f'{store}/{side}'] = \
                    repr(exc)
    results['machine']['load_after'] = os.getloadavg()
    os.makedirs(args.output, exist_ok=True)
    name = args.name or ('fleet-quick' if args.quick else 'fleet')
    with open(os.path.join(args.output, f'{name}.json'), 'w') as handle:
        json.dump(results, handle, indent=1, default=str)
    text = render(results)
    with open(os.path.join(args.output, f'{name}.rst'), 'w') as handle:
        handle.write(text)
    if echo:
        print(text)
    return results


if __name__ == '__main__':
    main()
