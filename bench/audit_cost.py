"""What the audit trail costs a write: A/B in one process, interleaved.

``python -m bench.audit_cost [--rounds N] [--ops N]`` builds the API over a
fresh SQLite store (the real driver, WAL, fsync as configured) and times
the write scenarios of ``bench.run`` -- create backup, PATCH job, session
cycle (start then end) -- with the audit trail on (A) and off (B: the
request binds no actor, so nothing is recorded), the sides taking turns
in every round. In process there is no HTTP, so the relative cost printed
is an upper bound of what a client sees. Prints per scenario the median
microseconds per operation of each side over the rounds, wall clock and
this process's CPU (less disturbed by other work on the machine), and the
overhead.
"""

import argparse
import contextlib
import json
import statistics
import tempfile
import time

import falcon.testing
from oslo_config import cfg

from freezer_api import conf as conf_pkg
from freezer_api import storage
from freezer_api.api import app as app_module
from freezer_api.api import audit as audit_api
from freezer_api.api import context

PROJECT = 'bench-project'
HEADERS = {'X-User-Id': 'bench', 'X-Project-Id': PROJECT,
           'X-Roles': 'member,reader', 'Content-Type': 'application/json'}
BACKUP = {'container': 'c', 'hostname': 'node1', 'backup_name': 'nightly',
          'curr_backup_level': 0, 'fs_real_path': '/var/lib/mysql',
          'client_os': 'linux', 'time_stamp': 1700000000, 'mode': 'fs',
          'path_to_backup': '/var/lib/mysql', 'storage': 'swift'}


def make_app(workdir):
    conf = cfg.ConfigOpts()
    conf_pkg.configure(conf)
    conf([], project='freezer-api', default_config_files=[])
    conf.set_override('state_path', workdir)
    conf.set_override('auth_strategy', 'noauth')
    conf.set_override('connection', f'sqlite:///{workdir}/bench.sqlite',
                      group='database')
    driver = storage.load_driver(conf)
    return falcon.testing.TestClient(context.NoAuthMiddleware(
        app_module.create_app(conf, driver), conf)), driver


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


def scenarios(client, job, session):
    turn = iter(range(10 ** 9))
    tag = [0]

    def create_backup():
        call(client, 'POST', '/backups', BACKUP)

    def patch_job():
        call(client, 'PATCH', f'/jobs/{job}', {'job_schedule': {
            'status': 'scheduled', 'result': 'success',
            'current_pid': next(turn)}})

    def session_cycle():
        started = call(client, 'POST', f'/sessions/{session}/action', {
            'start': {'job_id': job, 'current_tag': tag[0]}})
        tag[0] = started['session_tag']
        call(client, 'POST', f'/sessions/{session}/action', {
            'end': {'job_id': job, 'current_tag': tag[0],
                    'result': 'success'}})

    return {'create_backup': create_backup, 'patch_job': patch_job,
            'session_cycle': session_cycle}


@contextlib.contextmanager
def audit_off():
    original = audit_api.AuditActor.process_resource
    audit_api.AuditActor.process_resource = lambda *args: None
    try:
        yield
    finally:
        audit_api.AuditActor.process_resource = original


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=40)
    parser.add_argument('--ops', type=int, default=25)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        client, driver = make_app(workdir)
        try:
            runs = scenarios(client, *setup(client))
            times = {(name, side): [] for name in runs
                     for side in ('on', 'off')}
            cpu = {key: [] for key in times}
            for number in range(args.rounds):
                sides = ('on', 'off') if number % 2 else ('off', 'on')
                for name, run in runs.items():
                    for side in sides:
                        with (audit_off() if side == 'off'
                              else contextlib.nullcontext()):
                            run()  # warm
                            start = time.perf_counter()
                            start_cpu = time.process_time()
                            for _ in range(args.ops):
                                run()
                            elapsed = time.perf_counter() - start
                            used = time.process_time() - start_cpu
                        times[(name, side)].append(
                            elapsed / args.ops * 1e6)
                        cpu[(name, side)].append(used / args.ops * 1e6)
            for name in runs:
                on = statistics.median(times[(name, 'on')])
                off = statistics.median(times[(name, 'off')])
                ratios = sorted(a / b - 1 for a, b in zip(
                    times[(name, 'on')], times[(name, 'off')]))
                cpu_on = statistics.median(cpu[(name, 'on')])
                cpu_off = statistics.median(cpu[(name, 'off')])
                quartiles = statistics.quantiles(ratios, n=4)
                print(f'{name:14} wall: off {off:6.0f} us, on {on:6.0f} us'
                      f' ({100 * (on / off - 1):+5.1f}%, rounds\' middle '
                      f'half {100 * quartiles[0]:+.1f}% .. '
                      f'{100 * quartiles[2]:+.1f}%); CPU: off '
                      f'{cpu_off:5.0f} us, on {cpu_on:5.0f} us '
                      f'({100 * (cpu_on / cpu_off - 1):+5.1f}%)')
        finally:
            driver.close()


if __name__ == '__main__':
    main()
