"""Side-by-side benchmark of freezer-api and upstream freezer-api 18.0.0.

    python -m bench                      # full run (see --help)
    python -m bench --quick              # seconds: harness check only

For each store, both servers are started alike (``bench.deploy``), filled
with the same documents (``bench.data``), and loaded with wrk, scenario
after scenario, the two servers taking turns within every round (the first
one alternates between rounds), so that both see the same noise from the
machine. Reported per scenario: the medians over the rounds of the rate,
p50 and p99 latency, server CPU per request and worker RSS, the errors
summed, and the ratio ours/upstream; then the writes against issue 17's
targets, and last the fleet simulation (``bench.fleet``: how many
schedulers one host serves; ``--no-fleet`` leaves it out).
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from bench import data
from bench import deploy
from bench import load
from bench import report
from bench import scale

SCENARIOS = ['poll', 'get_job', 'create_backup', 'patch_job',
             'session_cycle', 'backup_search']
SCALE_SCENARIOS = ['poll', 'backup_search']
STORES = ['sqlite', 'postgresql', 'elasticsearch']
# NOTE: upstream 18.0.0 cannot run on PostgreSQL: "freezer-manage db sync"
# fails creating action_reports (column type BLOB, which PostgreSQL does not
# have), yet exits 0, and every request then answers 500 (relation "clients"
# does not exist). Its Elasticsearch driver is broken too. On those stores
# ours is compared with ours on SQLite.
UPSTREAM_STORES = ('sqlite',)


def log(*args):
    print(time.strftime('%H:%M:%S'), *args, file=sys.stderr, flush=True)


def save_json(results, path):
    """Write a benchmark's ``results`` to ``path`` (its folder made)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        json.dump(results, handle, indent=1, default=str)


def median_interval(values, confidence=0.95):
    """A distribution-free interval for the median of ``values``: the
    order statistics that hold it with at least ``confidence`` (the
    binomial sign test), or None if there are too few values."""
    ordered = sorted(values)
    count = len(ordered)
    below = 0.0  # P(Binomial(count, 1/2) < rank)
    rank = 0
    while True:
        share = math.comb(count, rank) / 2 ** count
        if 2 * (below + share) > 1 - confidence:
            break
        below += share
        rank += 1
    if rank == 0:
        return None
    return ordered[rank - 1], ordered[count - rank]


def paired_cost(values, base):
    """The cost of ``values`` against ``base`` from the rounds' paired
    ratios (each round runs both sides back to back, so a phase of the
    machine falls on both): (median, low, high) in per cent, the bounds
    those of ``median_interval`` (None if too few rounds)."""
    ratios = [100.0 * (a / b - 1) for a, b in zip(values, base)]
    interval = median_interval(ratios)
    low, high = interval if interval else (None, None)
    return statistics.median(ratios), low, high


def new_results(args, **parts):
    """What every benchmark's results file starts with: when, on what
    machine, with which arguments; then ``parts``."""
    return {'date': datetime.datetime.now().isoformat(timespec='seconds'),
            'machine': machine(), 'args': vars(args), **parts}


def run_timed(main):
    """Run a benchmark's ``main``, print how long it took, exit with its
    code."""
    started = time.monotonic()
    code = main()
    print(f'({time.monotonic() - started:.0f} s)', file=sys.stderr)
    sys.exit(code)


def _port():
    from tests.fixtures import servers
    return servers.free_port()


@contextlib.contextmanager
def _store_servers(store, stack):
    """Yield a factory: name -> store description for one side."""
    if store == 'sqlite':
        yield lambda workdir, name: {
            'connection': f'sqlite:///{workdir}/{name}.sqlite'}
    elif store == 'postgresql':
        from tests.fixtures import postgresql
        server = postgresql.start_server()
        stack.callback(server.close)
        yield lambda workdir, name: {
            'connection': server.create_database(f'bench_{name}')}
    elif store == 'elasticsearch':
        from tests.fixtures import elasticsearch
        server = elasticsearch.start_server()
        stack.callback(server.close)
        yield lambda workdir, name: {
            'es_hosts': server.url,
            'es_index': server.new_index_name(f'bench-{name}')}
    else:
        raise ValueError(store)


def _median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(rows):
    return {
        'rate': _median(rows, 'rate'),
        'p50_ms': _median(rows, 'p50_ms'),
        'p99_ms': _median(rows, 'p99_ms'),
        # the worst stall of any round, not a median: what an agent saw
        'max_ms': max((r['max_ms'] for r in rows
                       if r.get('max_ms') is not None), default=None),
        'cpu_ms': _median(rows, 'cpu_ms'),
        'rss_mib': _median(rows, 'rss_mib'),
        'errors': sum(r['errors'] for r in rows),
        'unsuccessful': sum(r.get('unsuccessful', 0) for r in rows),
        'rounds': len(rows),
    }


def add_round_options(parser, rounds, duration):
    """The options of a benchmark whose sides take turns under wrk, round
    after round (``bench.audit_http``, ``bench.versions``)."""
    parser.add_argument('--rounds', type=int, default=rounds)
    parser.add_argument('--duration', type=int, default=duration,
                        help='seconds of each scenario, each side, a round')
    parser.add_argument('--connections', type=int, default=8)
    parser.add_argument('--timeout', type=int, default=30)
    parser.add_argument('--small', action='store_true',
                        help='a tenth of the base data (harness checks)')


def target(side, service, lua_path, args):
    """A side to load: its service filled with the base documents, and
    the wrk data file naming them (``args.small``, ``args.connections``)."""
    ids = data.fill(service.url, small=args.small)
    return {'side': side, 'service': service,
            'lua': data.write_lua(lua_path, ids, args.connections)}


def warm_up(targets, scenarios, args, seconds=1):
    """Run every scenario for ``seconds`` (0: not at all) on every target:
    every code path once on every worker, before anything is measured."""
    for one in targets if seconds else ():
        for scenario in scenarios:
            load.run(one['service'], one['lua'], scenario, args.connections,
                     seconds, timeout=args.timeout)


def alternate(targets, scenarios, args, rounds, tag):
    """Run every scenario on every target, in turns; return summaries."""
    runs = {(t['side'], s): [] for t in targets for s in scenarios}
    for rnd in range(rounds):
        order = targets if rnd % 2 == 0 else list(reversed(targets))
        for scenario in scenarios:
            for target in order:
                result = load.run(target['service'], target['lua'], scenario,
                                  args.connections, args.duration,
                                  timeout=args.timeout)
                runs[(target['side'], scenario)].append(result)
                log(f'{tag} round {rnd + 1} {target["side"]:8} '
                    f'{scenario:14} {result["rate"]:8.1f}/s '
                    f'p50 {result["p50_ms"]:7.2f} ms '
                    f'p99 {result["p99_ms"]:8.2f} ms '
                    f'cpu {result["cpu_ms"] or 0:6.2f} ms '
                    f'err {result["errors"]} '
                    f'unsucc {result["unsuccessful"]}')
    return ({f'{side}/{scenario}': summarize(rows)
             for (side, scenario), rows in runs.items()},
            {f'{side}/{scenario}': rows
             for (side, scenario), rows in runs.items()})


def start_side(side, workdir, store_of, processes, threads, venv):
    name = f'{side}'
    store = store_of(workdir, name)
    port = _port()
    if side == 'ours':
        service = deploy.start_ours(workdir, port, store, processes,
                                    threads, name=name)
    else:
        service = deploy.start_upstream(workdir, port, store['connection'],
                                        processes, threads, name=name,
                                        venv=venv)
    return service, store


def bench_store(store, args, results, venv):
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix=f'freezer-bench-{store}-'))
        store_of = stack.enter_context(_store_servers(store, stack))
        sides = ['ours']
        if store in UPSTREAM_STORES and not args.ours_only:
            sides.append('upstream')
        targets = []
        for side in sides:
            service, where = start_side(side, workdir, store_of,
                                        args.processes, args.threads, venv)
            target = {'side': side, 'service': service, 'workdir': workdir}
            # NOTE: the scale runs may start the service again: stop
            # whichever is current.
            stack.callback(lambda t=target: t['service'].stop())
            log(f'{store}: {side} on {service.url}, filling')
            started = time.monotonic()
            ids = data.fill(service.url, small=args.quick)
            log(f'{store}: {side} filled in {time.monotonic() - started:.0f}s')
            lua = data.write_lua(os.path.join(workdir, f'{side}.lua'), ids,
                                 args.connections)
            target.update(lua=lua, store=where, ids=ids)
            targets.append(target)
        scenarios = SCALE_SCENARIOS if args.only_scale else SCENARIOS
        warm_up(targets, scenarios, args, args.warmup)
        if not args.only_scale:
            summary, runs = alternate(targets, SCENARIOS, args, args.rounds,
                                      store)
            results['stores'][store] = {'summary': summary, 'runs': runs}
        if args.scale:
            try:
                results['scale'][store] = scale_levels(
                    store, targets, args,
                    results.setdefault('scale_loads', {}).setdefault(
                        store, []))
            except Exception as exc:  # keep what was measured so far
                log(f'{store}: scale runs failed: {exc!r}')
                results.setdefault('failures', {})[f'scale/{store}'] = repr(
                    exc)


def store_bytes(store, where):
    """Disk used by one side's store (SQLite: the file and its WAL)."""
    if 'connection' not in where:
        return None
    url = where['connection']
    if store == 'sqlite':
        path = url.split(':///', 1)[1]
        return sum(os.path.getsize(p) for p in (path, path + '-wal')
                   if os.path.exists(p))
    import sqlalchemy as sa
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                'SELECT pg_database_size(current_database())')).scalar()
    finally:
        engine.dispose()


def scale_levels(store, targets, args, loads):
    """Grow the store level by level; run the poll and the backup search.

    Our server is stopped while its SQL store is filled (the loader takes
    the database to itself: no WAL, indexes dropped) and started again on
    the same port afterwards. ``loads`` gets the timings of every load."""
    out = {}
    for level in args.scale:
        for target in targets:
            stop = target['side'] == 'ours' and store != 'elasticsearch'
            if stop:
                target['service'].stop()
            started = time.monotonic()
            try:
                added, details = scale.grow(store, target['side'],
                                            target['store'], level, log=log)
            finally:
                if stop:
                    target['service'] = deploy.start_ours(
                        target['workdir'], target['service'].port,
                        target['store'], args.processes, args.threads,
                        name=target['side'])
            seconds = time.monotonic() - started
            if added:
                log(f'{store} {target["side"]}: +{added} jobs and backups '
                    f'to {level} in {seconds:.0f}s')
            loads.append({'side': target['side'], 'level': level,
                          'added': added, 'seconds': round(seconds, 1),
                          'store_bytes': store_bytes(store, target['store']),
                          'details': details,
                          'loadavg': os.getloadavg()})
        live = []
        for target in targets:
            if target['side'] == 'upstream' and level > args.upstream_max:
                probe = scale.probe_upstream(target['service'],
                                             target['ids'],
                                             args.upstream_probe_timeout)
                out[f'upstream/{level}'] = probe
                log(f'{store} upstream at {level}: probe {probe}')
                continue
            live.append(target)
        # the workers were restarted
        warm_up(live, SCALE_SCENARIOS, args, args.warmup)
        summary, _ = alternate(live, SCALE_SCENARIOS, args,
                               args.scale_rounds, f'{store}@{level}')
        loads[-1]['loadavg_after_runs'] = os.getloadavg()
        for key, value in summary.items():
            side, scenario = key.split('/')
            out.setdefault(f'{side}/{level}', {})[scenario] = value
    return out


def contention(args, results):
    """Ours on one SQLite file, 4 processes, 64 connections, all at once."""
    with tempfile.TemporaryDirectory(prefix='freezer-bench-c64-') as workdir:
        service = deploy.start_ours(
            workdir, _port(), {'connection': f'sqlite:///{workdir}/c.sqlite'},
            processes=4, threads=args.threads, name='ours-c64')
        try:
            ids = data.fill(service.url, small=args.quick)
            conns = args.contention_connections
            lua = data.write_lua(os.path.join(workdir, 'c.lua'), ids, conns)
            out = {}
            for scenario in SCENARIOS:
                out[scenario] = load.run(service, lua, scenario, conns,
                                         args.duration, timeout=args.timeout)
                log(f'c64 {scenario}: {out[scenario]["rate"]:.1f}/s '
                    f'errors {out[scenario]["errors"]}')
            # All write scenarios at the same time, a quarter of the
            # connections each.
            quarter = max(1, conns // 4)
            lua_q = data.write_lua(os.path.join(workdir, 'q.lua'), ids,
                                   quarter)
            mixed = ['poll', 'patch_job', 'create_backup', 'session_cycle']
            argvs = [[load.wrk_binary(), '-t', str(quarter), '-c',
                      str(quarter), '-d', f'{args.duration}s', '--timeout',
                      f'{args.timeout}s', '-s', load.LUA, service.url, '--',
                      lua_q, scenario] for scenario in mixed]
            procs = [subprocess.Popen(a, stdout=subprocess.PIPE, text=True)
                     for a in argvs]
            mixed_out = {}
            for scenario, proc in zip(mixed, procs):
                stdout, _ = proc.communicate(timeout=args.duration +
                                             args.timeout + 60)
                line = next(ln for ln in stdout.splitlines()
                            if ln.startswith('BENCH '))
                raw = json.loads(line[6:])
                mixed_out[scenario] = {
                    'requests': raw['requests'],
                    'errors': (raw['connect_errors'] + raw['read_errors'] +
                               raw['write_errors'] + raw['timeouts'] +
                               raw['status_errors'])}
            out['mixed'] = mixed_out
            log(f'c64 mixed: {mixed_out}')
            results['contention'] = out
        finally:
            service.stop()


def ceiling(args, results):
    """wrk with the same Lua scripts against a do-nothing WSGI app under
    the same uwsgi: what the generator and uwsgi can do at most."""
    with tempfile.TemporaryDirectory(prefix='freezer-bench-null-') as workdir:
        service = deploy.start_null(workdir, _port(), args.processes,
                                    args.threads)
        try:
            ids = {'clients': ['c'], 'jobs': ['j'], 'patch_jobs': ['j'],
                   'sessions': [['s', 'j']] * args.connections,
                   'backup_names': ['b']}
            lua = data.write_lua(os.path.join(workdir, 'n.lua'), ids,
                                 args.connections)
            out = {}
            for scenario in ('poll', 'create_backup'):
                out[scenario] = load.run(service, lua, scenario,
                                         args.connections,
                                         min(args.duration, 5))['rate']
            results['ceiling'] = out
            log(f'ceiling (null app): {out}')
        finally:
            service.stop()


def machine():
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            model = next(ln.split(':', 1)[1].strip() for ln in cpuinfo
                         if ln.startswith('model name'))
    except (OSError, StopIteration):
        model = platform.processor()
    return {'cpus': os.cpu_count(), 'cpu_model': model,
            'kernel': platform.release(),
            'python': platform.python_version(),
            'load_before': os.getloadavg()}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m bench',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--stores', default=','.join(STORES))
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--duration', type=int, default=10,
                        help='seconds of load per run')
    parser.add_argument('--connections', type=int, default=8)
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--timeout', type=int, default=30,
                        help='wrk per-request timeout, seconds')
    parser.add_argument('--scale', default='1000,100000,1000000',
                        help='store sizes for the scale runs ("" = none)')
    parser.add_argument('--scale-stores', default='sqlite,postgresql,'
                        'elasticsearch')
    parser.add_argument('--scale-rounds', type=int, default=3)
    parser.add_argument('--upstream-max', type=int, default=1000,
                        help='above this size, upstream only gets a few '
                        'sequential requests (its search reads every row)')
    parser.add_argument('--upstream-probe-timeout', type=int, default=180)
    parser.add_argument('--contention-connections', type=int, default=64)
    parser.add_argument('--no-contention', action='store_true')
    parser.add_argument('--no-fleet', action='store_true',
                        help='leave out the fleet simulation (bench.fleet, '
                        'run after the scenarios with the same stores)')
    parser.add_argument('--ours-only', action='store_true')
    parser.add_argument('--only-scale', action='store_true',
                        help='only the scale runs (no main scenarios, no '
                        'generator ceiling)')
    parser.add_argument('--name', default=None,
                        help='results file name (default: latest, or quick '
                        'with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='1 round of 2 s, SQLite, a tenth of the data, '
                        'no scale: checks the harness, measures nothing')
    parser.add_argument('--output', default=os.path.join(deploy.HERE,
                                                         'results'))
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 2
        args.stores, args.scale = 'sqlite', ''
        args.scale_rounds = 1
        args.contention_connections = 16
        args.warmup = 0
    args.warmup = getattr(args, 'warmup', 1)
    args.stores = [s for s in args.stores.split(',') if s]
    args.scale_stores = [s for s in args.scale_stores.split(',') if s]
    args.scale = [int(n) for n in args.scale.split(',') if n]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load.wrk_binary()
    venv = None if args.ours_only else deploy.upstream_venv(log)
    results = new_results(args, stores={}, scale={})
    if not args.only_scale:
        ceiling(args, results)
    for store in args.stores:
        saved = args.scale
        if store not in args.scale_stores:
            args.scale = []
        try:
            bench_store(store, args, results, venv)
        except Exception as exc:  # report the other stores all the same
            log(f'{store}: failed: {exc!r}')
            results.setdefault('failures', {})[store] = repr(exc)
        args.scale = saved
    if not args.no_contention:
        contention(args, results)
    results['machine']['load_after'] = os.getloadavg()
    name = args.name or ('quick' if args.quick else 'latest')
    save_json(results, os.path.join(args.output, f'{name}.json'))
    text = report.render(results)
    for what, failure in results.get('failures', {}).items():
        text += f'\nFAILED {what}: {failure}\n'
    with open(os.path.join(args.output, f'{name}.rst'), 'w') as handle:
        handle.write(text)
    if not (args.no_fleet or args.only_scale):
        # bench.fleet writes its own results (fleet.rst/json)
        from bench import fleet
        fleet_argv = ['--stores', ','.join(args.stores),
                      '--processes', str(args.processes),
                      '--threads', str(args.threads),
                      '--output', args.output]
        fleet_argv += ['--quick'] if args.quick else []
        fleet_argv += ['--ours-only'] if args.ours_only else []
        text += '\n' + fleet.render(fleet.main(fleet_argv, echo=False))
    print(text)
    return results


if __name__ == '__main__':
    main()
