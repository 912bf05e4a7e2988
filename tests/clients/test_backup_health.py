"""Backup health (issue 15) with the real freezer-scheduler and agent.

A freezer-api of its own (behind the suite's Keystone, with short
``[health]`` times) serves one scheduler, found through ``[service_auth]
os_backup_url``. The scheduler polls every second and runs, every
``EVERY`` seconds:

- ``good``: a file-system backup (``--storage local``), which succeeds
  and whose metadata the scheduler posts;
- ``bad``: a backup of a path that does not exist, which fails.

Then the scheduler is stopped for several intervals (missed runs, the
client offline), started again with a job that keeps failing and
retrying (a long run), and killed with its agent while that job runs:
the run goes stale, then lost. The coverage must show each of these. No
wait is longer than a minute.

NOTE: freezer-scheduler 19 cannot run ``exec`` actions (it reads an
option it never registers, ``disable_exec``), so every job here backs up.
"""

import time
import types
import uuid

import pytest

from tests.clients import helpers
from tests.clients.test_scheduler_agent import Scheduler
from tests.fixtures import keystone as keystone_fixtures
from tests.fixtures import servers

EVERY = 8          # seconds between two runs of good and bad
LEASE = 6          # run_lease of the sleeping job
HEALTH = """\
    [health]
    missed_grace = 2
    client_offline_after = 4
    presence_flush_interval = 0.5
    default_run_lease = 600
    """


@pytest.fixture(scope='module')
def health_api(keystone, tmp_path_factory):
    folder = tmp_path_factory.mktemp('health-api')
    port = servers.free_port()
    config = servers.write_config(
        folder / 'freezer-api.conf', f'sqlite:///{folder}/freezer.sqlite',
        port=port, auth_strategy='keystone',
        extra=keystone_fixtures.keystone_config(keystone, HEALTH))
    env = servers.clean_env(folder, FREEZER_API_CONFIG_FILES=str(config))
    # NOTE: threads on, as in etc/freezer/uwsgi.ini: polls are written by
    # a background thread (core/presence.py).
    server = servers.start_uwsgi(folder, env, port=port, extra=[
        '--processes', '2', '--enable-threads', '--buffer-size', '65535'])
    try:
        yield keystone_fixtures.KeystoneApi(server, keystone, str(config))
    finally:
        server.stop()


def backup_job(client_id, work, name, source, **extra):
    retries = extra.pop('retries', (0, 1))
    return {'client_id': client_id, 'description': name,
            'job_actions': [{
                'max_retries': retries[0],
                'max_retries_interval': retries[1],
                'freezer_action': {
                    'action': 'backup', 'mode': 'fs',
                    'path_to_backup': str(source), 'backup_name': name,
                    'container': str(work / 'storage'), 'storage': 'local',
                    'log_file': str(work / f'agent-{name}.log')}}],
            **extra}


@pytest.fixture(scope='module')
def story(openstack_clients, health_api, tmp_path_factory):
    keystone = health_api.keystone
    account = keystone.new_account(f'health-{uuid.uuid4().hex[:10]}')
    work = tmp_path_factory.mktemp('health')
    svc = helpers.Service(health_api, account)
    client_id = f'health_{uuid.uuid4().hex[:10]}'
    out = types.SimpleNamespace(svc=svc, client_id=client_id, work=work)
    source, storage = work / 'source', work / 'storage'
    source.mkdir()
    storage.mkdir()
    (source / 'a.txt').write_text('health\n')

    def start(name):
        # polling every second, through os_backup_url at health_api
        (work / name).mkdir()
        return Scheduler(openstack_clients, account, keystone.auth_url,
                         work / name, client_id, interval=1,
                         backup_url=health_api.url)

    def runs(job_id):
        return svc.request('GET', f'/jobs/{job_id}/runs?limit=100').json()[
            'runs']

    def coverage():
        return svc.request('GET', '/coverage').json()

    out.runs, out.coverage = runs, coverage
    first = start('first')
    out.logs = [first]
    try:
        helpers.wait_for(lambda: first.check_alive() or svc.get(
            'clients', client_id, expect=None), 'the client', first.log)

        def create(body):
            return svc.request('POST', '/jobs/', json=body,
                               expect=201).json()['job_id']

        interval = {'schedule_interval': f'{EVERY} seconds'}
        out.good = create(backup_job(client_id, work, 'good', source,
                                     rpo=60, job_schedule=dict(interval)))
        out.bad = create(backup_job(client_id, work, 'bad',
                                    work / 'missing',
                                    job_schedule=dict(interval)))

        def ran():
            first.check_alive()
            results = {job: [r['result'] for r in runs(job)]
                       for job in (out.good, out.bad)}
            return ('success' in results[out.good]
                    and 'fail' in results[out.bad])

        helpers.wait_for(ran, 'a good and a failed run',
                         first.log, timeout=60)
        out.before_stop = coverage()
        first.stop()
        out.stopped_at = time.time()
        # several intervals without the scheduler
        time.sleep(4 * EVERY)
        out.while_stopped = coverage()
        out.missed = {job: [r for r in runs(job) if r['status'] == 'missed']
                      for job in (out.good, out.bad)}

        # fails and retries for a minute: a long run
        out.slow = create(backup_job(client_id, work, 'slow',
                                     work / 'missing', retries=(6, 10),
                                     run_lease=LEASE, job_schedule={}))
        second = start('second')
        out.logs.append(second)

        def sleeping():
            second.check_alive()
            return svc.get('jobs', out.slow)['job_schedule'].get(
                'status') == 'running'

        helpers.wait_for(sleeping, 'the sleeping job to run', second.log,
                         timeout=60)
        second.kill()
        out.killed_at = time.time()
        out.just_killed = [r['status'] for r in runs(out.slow)
                           if r['status'] != 'missed']
        time.sleep(LEASE + 2)
        out.after_kill = coverage()
        out.slow_runs = runs(out.slow)
    finally:
        for scheduler in out.logs:
            if scheduler.process.poll() is None:
                scheduler.stop()
    yield out


def entry(answer, job_id):
    [found] = [job for job in answer['jobs'] if job['job_id'] == job_id]
    return found


def test_good_and_bad_runs_are_recorded(story):
    good = [r for r in story.runs(story.good) if r['status'] == 'completed']
    bad = [r for r in story.runs(story.bad) if r['status'] == 'completed']
    # a run going when the scheduler is stopped (SIGTERM) ends aborted
    assert 'success' in {r['result'] for r in good}
    assert {r['result'] for r in good} <= {'success', 'aborted'}
    assert 'fail' in {r['result'] for r in bad}
    assert {r['result'] for r in bad} <= {'fail', 'aborted'}
    for run in good + bad:
        assert run['client_id'] == story.client_id
        assert run['end'] >= run['start'] > 0


def test_each_good_run_has_its_backup(story):
    good = [r for r in story.runs(story.good) if r['result'] == 'success']
    backups = story.svc.list('backups', {'match': [
        {'job_id': story.good}]})
    linked = [b for run in good for b in run['backups']]
    assert sorted(linked) == sorted(b['backup_id'] for b in backups)
    assert all(len(run['backups']) == 1 for run in good), good


def test_coverage_while_the_scheduler_runs(story):
    good = entry(story.before_stop, story.good)
    assert good['last_success'] is not None
    assert good['breached'] is False
    assert good['client_offline'] is False
    assert good['rpo'] == 60 and good['rpo_source'] == 'job'
    bad = entry(story.before_stop, story.bad)
    assert bad['last_success'] is None
    assert bad['rpo'] == 2 * EVERY


def test_a_stopped_scheduler_misses_runs_offline(story):
    for job in (story.good, story.bad):
        missed = story.missed[job]
        assert len(missed) >= 2, missed
        late = [r for r in missed
                if r['expected_at'] > story.stopped_at + 4]
        assert late and {r['reason'] for r in late} == {
            'client_offline'}, missed
    answer = story.while_stopped
    assert entry(answer, story.good)['client_offline'] is True
    assert entry(answer, story.good)['missed_7d'] >= 2
    assert entry(answer, story.bad)['breached'] is True
    [client] = answer['clients']
    assert client['offline'] is True


def test_a_killed_scheduler_leaves_a_stale_job_and_a_lost_run(story):
    assert story.just_killed == ['running']
    [run] = [r for r in story.slow_runs if r['status'] != 'missed']
    assert (run['status'], run['result']) == ('lost', 'lost')
    assert run['end'] == run['last_report'] + LEASE
    slow = entry(story.after_kill, story.slow)
    assert slow['stale'] is True
    assert slow['lost_7d'] == 1
    # the job document the scheduler reads still says running
    job = story.svc.get('jobs', story.slow)
    assert job['job_schedule']['status'] == 'running'
