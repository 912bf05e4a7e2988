"""freezer-scheduler and freezer-agent (the ``freezer`` package pinned in
tests.fixtures.openstack_clients) against freezer-api behind Keystone.

One scheduler runs in the foreground (no daemon), polling every
``INTERVAL`` seconds, with its own config file, job directory, HOME and
TMPDIR under a temporary directory, as a fresh user of a fresh project:

1. it registers its client;
2. a backup job (file-system mode, ``--storage local``, the container a
   temporary directory) is created for it; the scheduler starts
   ``freezer-agent --metadata-out - --config <action file>``, reads the
   metadata the agent prints on stdout, adds ``job_id`` and POSTs it to
   ``/v2/<project>/backups/`` (in 19.0.0 the scheduler posts backup
   metadata, not the agent; it would PATCH ``backups/<backup_id>`` first if
   the agent had printed a ``backup_id``, which only cinder-native backups
   do), then PATCHes the job as completed;
3. a restore job, held with a stop event, is added to a new session and
   started; the scheduler starts the session (``POST .../sessions/<id>/
   action`` ``start`` with the job's tag), runs the agent, ends the session
   with the result, and completes the job; a restore prints no metadata, so
   nothing more is posted.

The run happens once per module (``run``); each test checks one outcome
on the service side or on disk. The scheduler's process group is killed at
the end whatever happened.
"""

import os
import signal
import socket
import subprocess
import types
import uuid

import pytest

from tests.clients import helpers

INTERVAL = 2
BACKUP_NAME = 'source-tree'


def make_source(root):
    """A small tree with the things a restore can get wrong."""
    files = {
        'a.txt': (b'hello freezer\n', 0o600),
        'run.sh': (b'#!/bin/sh\necho restored\n', 0o755),
        'name with spaces.txt': (b'spaces', 0o644),
        'sub/blob.bin': (os.urandom(256 * 1024), 0o640),
        'sub/empty': (b'', 0o444),
        'sub/deeper/notes.md': (b'# notes\n' * 100, 0o664),
    }
    for rel, (content, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    (root / 'link-to-a').symlink_to('a.txt')
    (root / 'sub' / 'deeper').chmod(0o700)
    (root / 'sub').chmod(0o750)


class Scheduler:
    """freezer-scheduler in the foreground, in a process group of its own,
    polling every ``interval`` seconds; ``backup_url`` (os_backup_url)
    aims it at an API other than the catalog's."""

    def __init__(self, venv, account, auth_url, workdir, client_id,
                 interval=INTERVAL, backup_url=None):
        self.workdir = workdir
        self.home = workdir / 'home'
        self.home.mkdir()
        self.log_path = workdir / 'scheduler.log'
        self.out_path = workdir / 'scheduler.out'
        config = workdir / 'scheduler.conf'
        # NOTE: the [service_auth] keys are the options' dest names.
        service_auth = [f'os_auth_url = {auth_url}']
        if backup_url is not None:
            service_auth.append(f'os_backup_url = {backup_url}')
        service_auth += [
            f'os_username = {account.username}',
            f'os_password = {account.password}',
            f'os_project_name = {account.project_name}',
            f'os_user_domain_name = {account.user_domain_name}',
            f'os_project_domain_name = {account.project_domain_name}']
        config.write_text('\n'.join([
            '[DEFAULT]', 'debug = true', f'log_file = {self.log_path}',
            'use_stderr = false', '',
            '[scheduler]', f'client_id = {client_id}',
            f'jobs_dir = {workdir / "jobs"}', f'interval = {interval}',
            'no_daemon = true', '',
            '[service_auth]', *service_auth, '']))
        self._out = open(self.out_path, 'wb')
        self.process = subprocess.Popen(
            [venv.freezer_scheduler, '--config-file', str(config), 'start'],
            env=venv.env(self.home), cwd=str(workdir), stdout=self._out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        self.pgid = self.process.pid

    def check_alive(self):
        if self.process.poll() is not None:
            raise AssertionError(f'freezer-scheduler exited with '
                                 f'{self.process.returncode}\n{self.log()}')

    def log(self):
        return (helpers.read_tail(self.out_path, 2000) + '\n' +
                helpers.read_tail(self.log_path, 8000))

    def _signal_group(self, signum):
        try:
            os.killpg(self.pgid, signum)
            return True
        except ProcessLookupError:
            return False

    def stop(self):
        """Stop the scheduler and any agent it started; True if the
        process group is gone."""
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)
        self.process.wait()
        self._out.close()
        return not self._signal_group(0)

    def kill(self):
        """SIGKILL the scheduler and its agents: nothing reports again."""
        self._signal_group(signal.SIGKILL)
        self.process.wait()
        self._out.close()


@pytest.fixture(scope='module')
def run(openstack_clients, keystone_api, tmp_path_factory):
    keystone = keystone_api.keystone
    account = keystone.new_account(f'scheduler-{uuid.uuid4().hex[:10]}')
    work = tmp_path_factory.mktemp('scheduler')
    source, storage, restored = (work / 'source', work / 'storage',
                                 work / 'restored')
    make_source(source)
    storage.mkdir()
    restored.mkdir()
    svc = helpers.Service(keystone_api, account)
    client_id = f'scheduler_{uuid.uuid4().hex[:10]}'
    result = types.SimpleNamespace(
        account=account, client_id=client_id, source=source,
        storage=storage, restored=restored, work=work, svc=svc)

    scheduler = Scheduler(openstack_clients, account, keystone.auth_url,
                          work, client_id)
    result.scheduler = scheduler
    lib = None
    try:
        def job_state(job_id, *statuses):
            def probe():
                scheduler.check_alive()
                job = svc.get('jobs', job_id)
                if job['job_schedule'].get('status') in statuses:
                    return job
                return None
            return probe

        def describe(job_id):
            return lambda: (f'job: {svc.get("jobs", job_id)}\n'
                            f'{scheduler.log()}')

        def registered():
            scheduler.check_alive()
            return svc.get('clients', client_id, expect=None)

        result.client = helpers.wait_for(registered, 'the scheduler client',
                                         scheduler.log)
        lib = helpers.LibraryClient(openstack_clients, account,
                                    keystone.auth_url, str(work))

        result.backup_job_id = lib.jobs.create({
            'client_id': client_id, 'description': 'back up the tree',
            'job_actions': [{'max_retries': 0, 'freezer_action': {
                'action': 'backup', 'mode': 'fs',
                'path_to_backup': str(source), 'backup_name': BACKUP_NAME,
                'container': str(storage), 'storage': 'local',
                'log_file': str(work / 'agent-backup.log')}}],
            'job_schedule': {}})
        helpers.wait_for(job_state(result.backup_job_id, 'completed'),
                         'the backup job to complete',
                         describe(result.backup_job_id))

        # Held with a stop event until it is in the session, so that the
        # scheduler cannot run it before.
        result.restore_job_id = lib.jobs.create({
            'client_id': client_id, 'description': 'restore the tree',
            'job_actions': [{'max_retries': 0, 'freezer_action': {
                'action': 'restore', 'mode': 'fs',
                'restore_abs_path': str(restored),
                'backup_name': BACKUP_NAME, 'container': str(storage),
                'storage': 'local',
                'log_file': str(work / 'agent-restore.log')}}],
            'job_schedule': {'event': 'stop'}})
        helpers.wait_for(job_state(result.restore_job_id, 'stop'),
                         'the scheduler to hold the restore job',
                         describe(result.restore_job_id))
        result.session_id = lib.sessions.create({
            'description': 'restore session', 'hold_off': 30,
            'schedule': {}})
        lib.sessions.add_job(result.session_id, result.restore_job_id)
        lib.jobs.start_job(result.restore_job_id)
        helpers.wait_for(job_state(result.restore_job_id, 'completed'),
                         'the restore job to complete',
                         describe(result.restore_job_id))
    finally:
        if lib is not None:
            lib.close()
        result.stopped = scheduler.stop()
    yield result


def report(run):
    with open(run.scheduler.log_path, errors='replace') as handle:
        errors = [line for line in handle if ' ERROR ' in line]
    return (f'scheduler errors:\n{"".join(errors[-10:])}\n'
            f'{run.scheduler.log()}\nagent (backup):\n'
            f'{helpers.read_tail(run.work / "agent-backup.log", 3000)}\n'
            f'agent (restore):\n'
            f'{helpers.read_tail(run.work / "agent-restore.log", 3000)}')


def test_scheduler_registers_its_client(run):
    client = run.svc.get('clients', run.client_id)
    assert client['project_id'] == run.account.project_id
    assert client['user_id'] == run.account.user_id
    info = client['client']
    assert info['client_id'] == run.client_id
    assert info['hostname'] == socket.gethostname()
    assert {'backup', 'restore'} <= set(info['supported_actions'])
    assert 'local' in info['supported_storages']
    assert 'fs' in info['supported_modes']
    assert info['is_central'] is False


def test_backup_job_runs_to_success(run):
    job = run.svc.get('jobs', run.backup_job_id)
    schedule = job['job_schedule']
    assert (schedule['status'], schedule['result']) == (
        'completed', 'success'), report(run)
    assert schedule['time_started'] > 0
    assert schedule['time_ended'] >= schedule['time_started']
    assert schedule['current_pid'] > 0
    assert any(files for _, _, files in os.walk(run.storage)), report(run)


def test_scheduler_posts_the_backup_metadata(run):
    backups = run.svc.list('backups')
    # one record: the backup's; a restore posts none
    assert len(backups) == 1, f'{backups}\n{report(run)}'
    [backup] = backups
    metadata = backup['backup_metadata']
    assert metadata['job_id'] == run.backup_job_id  # added by the scheduler
    assert metadata['backup_name'] == BACKUP_NAME
    assert metadata['container'] == str(run.storage)
    assert metadata['path_to_backup'] == str(run.source)
    assert metadata['hostname'] == socket.gethostname()
    assert metadata['storage'] == 'local'
    assert metadata['mode'] == 'fs'
    assert metadata['engine_name'] == 'tar'
    assert metadata['curr_backup_level'] == 0
    assert isinstance(metadata['time_stamp'], int)
    assert backup['project_id'] == run.account.project_id
    assert backup['user_id'] == run.account.user_id
    found = run.svc.list('backups', {'match': [
        {'job_id': run.backup_job_id}]})
    assert [b['backup_id'] for b in found] == [backup['backup_id']]


def test_restore_in_a_session_reproduces_the_tree(run):
    job = run.svc.get('jobs', run.restore_job_id)
    assert (job['job_schedule']['status'], job['job_schedule']['result']) == (
        'completed', 'success'), report(run)
    restored = helpers.tree(run.restored)
    assert restored == helpers.tree(run.source), report(run)
    assert len(restored) == 9


def test_scheduler_starts_and_ends_the_session(run):
    session = run.svc.get('sessions', run.session_id)
    assert session['status'] == 'completed', f'{session}\n{report(run)}'
    assert session['result'] == 'success'
    assert session['session_tag'] == 1
    assert session['time_start'] > 0
    assert session['time_end'] >= session['time_start']
    assert session['last_start']
    entry = session['jobs'][run.restore_job_id]
    assert entry['client_id'] == run.client_id
    assert (entry['status'], entry['result']) == ('completed', 'success')
    job = run.svc.get('jobs', run.restore_job_id)
    assert job['session_id'] == run.session_id
    assert job['session_tag'] == 1


def test_scheduler_stops_with_its_process_group(run):
    assert run.stopped, 'processes of the scheduler group are still running'
    assert run.scheduler.process.returncode is not None
