"""Run one wrk load against one server and read what it cost the server."""

import json
import os
import shutil
import subprocess

from bench import deploy

LUA = os.path.join(deploy.HERE, 'lua', 'scenario.lua')


def wrk_binary():
    path = shutil.which('wrk')
    if path is None:
        raise RuntimeError('wrk is needed: apt-get install wrk')
    return path


def run(service, data_file, scenario, connections, seconds, timeout=30):
    """Return the measurements of ``seconds`` of load on ``service``."""
    cpu_before = service.cpu_seconds()
    argv = [wrk_binary(), '-t', str(connections), '-c', str(connections),
            '-d', f'{seconds}s', '--timeout', f'{timeout}s', '-s', LUA,
            service.url, '--', data_file, scenario]
    done = subprocess.run(argv, capture_output=True, text=True,
                          timeout=seconds + timeout + 60)
    cpu = service.cpu_seconds() - cpu_before
    line = next((ln for ln in done.stdout.splitlines()
                 if ln.startswith('BENCH ')), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f'wrk failed ({done.returncode}): '
                           f'{done.stdout[-2000:]} {done.stderr[-2000:]}')
    raw = json.loads(line[len('BENCH '):])
    seconds_run = raw['duration_us'] / 1e6
    requests = raw['requests']
    per_cycle = scenario == 'session_cycle'
    units = raw['cycles'] if per_cycle else requests
    errors = (raw['connect_errors'] + raw['read_errors'] +
              raw['write_errors'] + raw['timeouts'] + raw['status_errors'])
    rss = service.worker_rss_mib()
    return {
        'scenario': scenario,
        'connections': connections,
        'requests': requests,
        'rate': units / seconds_run if seconds_run else 0.0,
        'p50_ms': raw['p50_us'] / 1000.0,
        'p99_ms': raw['p99_us'] / 1000.0,
        'max_ms': raw['max_us'] / 1000.0,
        'errors': errors,
        'unsuccessful': raw['unsuccessful'],
        'cpu_ms': 1000.0 * cpu / units if units else None,
        'rss_mib': max(rss) if rss else None,
        'raw': raw,
    }
