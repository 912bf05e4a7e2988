"""What the Prometheus metrics cost on the write scenarios.

    python -m bench.metrics                 # 5 rounds of 10 s per scenario
    python -m bench.metrics --quick         # harness check, measures nothing

Two copies of our service run side by side under uwsgi on SQLite, alike
but for ``[metrics] enabled``, each on its own store filled with the same
documents (``bench.data``). The write scenarios (create a backup, PATCH a
job, a session start/end cycle) load them in turns, the first side
alternating between rounds, so both see the same noise. The metrics side
is scraped as Prometheus would (``--scrape-interval``). Reported per
scenario: the median and range over the rounds of the rate and of the
server CPU per request (per cycle for sessions), and the cost of the
metrics as the relative increase of that CPU time.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import requests

from bench import data
from bench import deploy
from bench import load

SCENARIOS = ['create_backup', 'patch_job', 'session_cycle']
SIDES = {
    'metrics-off': '',
    'metrics-on': """
        [metrics]
        enabled = true
        allowed_addresses = 127.0.0.1
        """,
}


def log(*args):
    print(time.strftime('%H:%M:%S'), *args, file=sys.stderr, flush=True)


class Scraper(threading.Thread):
    """GET /metrics every ``interval`` seconds, as Prometheus would."""

    def __init__(self, url, interval):
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.halt = threading.Event()
        self.scrapes = 0

    def run(self):
        while not self.halt.wait(self.interval):
            answer = requests.get(self.url + '/metrics', timeout=60)
            answer.raise_for_status()
            self.scrapes += 1


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m bench.metrics',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--duration', type=int, default=10,
                        help='seconds of load per run')
    parser.add_argument('--connections', type=int, default=8)
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--scrape-interval', type=float, default=15.0,
                        help='seconds between scrapes of the metrics side '
                        '(0: none)')
    parser.add_argument('--quick', action='store_true',
                        help='1 round of 2 s on a tenth of the data')
    parser.add_argument('--output', default=os.path.join(
        deploy.HERE, 'results', 'metrics-cost.json'))
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 2
    return args


def spread(values):
    return {'median': statistics.median(values), 'min': min(values),
            'max': max(values)}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load.wrk_binary()
    runs = {(side, s): [] for side in SIDES for s in SCENARIOS}
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix='freezer-bench-metrics-'))
        targets = []
        for side, extra in SIDES.items():
            folder = os.path.join(workdir, side)
            os.mkdir(folder)
            from tests.fixtures import servers
            service = deploy.start_ours(
                folder, servers.free_port(),
                {'connection': f'sqlite:///{folder}/store.sqlite'},
                args.processes, args.threads, name=side, extra_conf=extra)
            stack.callback(service.stop)
            ids = data.fill(service.url, small=args.quick)
            lua = data.write_lua(os.path.join(folder, 'data.lua'), ids,
                                 args.connections)
            targets.append((side, service, lua))
            log(f'{side} on {service.url}, filled')
        for side, service, lua in targets:  # warm-up, not measured
            for scenario in SCENARIOS:
                load.run(service, lua, scenario, args.connections, 1)
        scraper = None
        if args.scrape_interval > 0:
            scraper = Scraper(targets[1][1].url, args.scrape_interval)
            scraper.start()
        for rnd in range(args.rounds):
            order = targets if rnd % 2 == 0 else targets[::-1]
            for scenario in SCENARIOS:
                for side, service, lua in order:
                    result = load.run(service, lua, scenario,
                                      args.connections, args.duration)
                    runs[(side, scenario)].append(result)
                    log(f'round {rnd + 1} {side:11} {scenario:14} '
                        f'{result["rate"]:8.1f}/s cpu '
                        f'{result["cpu_ms"] or 0:6.2f} ms err '
                        f'{result["errors"]} unsucc '
                        f'{result["unsuccessful"]}')
        if scraper is not None:
            scraper.halt.set()
            scraper.join(timeout=60)
        figures_cost = store_figures_cost(
            os.path.join(workdir, 'metrics-on', 'store.sqlite'))
    summary = {}
    for scenario in SCENARIOS:
        off, on = runs[('metrics-off', scenario)], runs[('metrics-on',
                                                         scenario)]
        # per round: the two sides ran back to back, under the same noise
        cpu_cost = [100.0 * (b['cpu_ms'] / a['cpu_ms'] - 1.0)
                    for a, b in zip(off, on) if a['cpu_ms'] and b['cpu_ms']]
        rate_cost = [100.0 * (1.0 - b['rate'] / a['rate'])
                     for a, b in zip(off, on) if a['rate']]
        summary[scenario] = {
            'off_rate': spread([r['rate'] for r in off]),
            'on_rate': spread([r['rate'] for r in on]),
            'off_cpu_ms': spread([r['cpu_ms'] for r in off]),
            'on_cpu_ms': spread([r['cpu_ms'] for r in on]),
            'cpu_cost_percent': spread(cpu_cost),
            'rate_cost_percent': spread(rate_cost),
            'errors': sum(r['errors'] + r['unsuccessful']
                          for r in off + on),
        }
    result = {'date': time.strftime('%Y-%m-%dT%H:%M:%S'),
              'args': vars(args), 'load': os.getloadavg(),
              'scrapes': scraper.scrapes if scraper else 0,
              'recording_us': recording_cost(),
              'store_figures': figures_cost,
              'summary': summary,
              'runs': {f'{side}/{scenario}': [
                  {k: v for k, v in r.items() if k != 'raw'} for r in rows]
                  for (side, scenario), rows in runs.items()}}
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, 'w') as handle:
        json.dump(result, handle, indent=1)
    for scenario, figures in summary.items():
        cpu, rate = figures['cpu_cost_percent'], figures['rate_cost_percent']
        print(f'{scenario:14} CPU per request {cpu["median"]:+5.1f}% '
              f'({cpu["min"]:+.1f} .. {cpu["max"]:+.1f}), rate lost '
              f'{rate["median"]:+5.1f}% ({rate["min"]:+.1f} .. '
              f'{rate["max"]:+.1f}), '
              f'{figures["off_cpu_ms"]["median"]:.2f} -> '
              f'{figures["on_cpu_ms"]["median"]:.2f} ms CPU, errors '
              f'{figures["errors"]}')
    print(f'recording one request: {result["recording_us"]:.1f} us')
    print('store figures, read once per [metrics] store_cache_seconds: '
          '{cpu_ms:.0f} ms CPU for {documents} documents'.format(
              **figures_cost))
    return result


def store_figures_cost(path):
    """CPU time of one read of the store figures (documents by kind, job
    and session states) on the metrics side's store, as it ended."""
    from oslo_config import cfg

    from freezer_api import conf as conf_pkg
    from freezer_api.metrics import store
    from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver

    conf = conf_pkg.configure(cfg.ConfigOpts())
    conf([], project='freezer-api', default_config_files=[])
    conf.set_override('connection', f'sqlite:///{path}', group='database')
    driver = SQLAlchemyDriver(conf)
    try:
        store.read(driver)  # warm
        started = time.process_time()
        figures = store.read(driver)
        cpu = time.process_time() - started
    finally:
        driver.close()
    return {'cpu_ms': 1000.0 * cpu,
            'documents': sum(figures[store.DOCUMENTS].values())}


def recording_cost(count=20000):
    """Microseconds the middleware adds to one request (in process, a
    figure the machine's noise barely moves)."""
    import falcon.testing

    from freezer_api.api import metrics as api_metrics
    from freezer_api.metrics import instruments

    with tempfile.TemporaryDirectory() as folder:
        recorder = api_metrics.RecordRequests(
            instruments.for_directory(folder))
        env = falcon.testing.create_environ('/v2/p/jobs/j', method='PATCH')
        req, resp = falcon.Request(env), falcon.Response()
        req.uri_template = '/v2/{project_id}/jobs/{job_id}'
        started = time.perf_counter()
        for _ in range(count):
            recorder.process_request(req, resp)
            recorder.process_response(req, resp, None, True)
        return 1e6 * (time.perf_counter() - started) / count


if __name__ == '__main__':
    main()
