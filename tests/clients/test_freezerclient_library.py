"""python-freezerclient (pinned in tests.fixtures.openstack_clients) as a
library: ``freezerclient.v2.client.Client`` on a keystoneauth session,
finding freezer-api in the Keystone catalog, for every resource.

Each test is a fresh user of a fresh project; what the library reports is
checked again on the service side with plain HTTP and a token.
"""

import socket
import uuid

import pytest

from tests.clients.helpers import ClientError

# What freezer-agent 19.0.0 prints with --metadata-out after a file-system
# backup to local storage (the scheduler adds job_id and posts it as is):
# options that were not given are sent as empty strings.
AGENT_METADATA = {
    'curr_backup_level': 0, 'fs_real_path': '/srv/data',
    'vol_snap_path': '/srv/data', 'client_os': 'linux',
    'client_version': '19.0.0', 'time_stamp': 1700000000,
    'action': 'backup', 'always_level': '', 'backup_media': 'fs',
    'backup_name': 'srv-data', 'container': '/var/backups/freezer',
    'container_segments': '', 'dry_run': '', 'hostname': 'node1',
    'path_to_backup': '/srv/data', 'max_level': '',
    'log_file': '/var/log/freezer-agent.log', 'storage': 'local',
    'mode': 'fs', 'proxy': '', 'compression': 'gzip',
    'ssh_key': '/root/.ssh/id_rsa', 'ssh_username': '', 'ssh_host': '',
    'ssh_port': 22, 'consistency_checksum': '', 'cindernative_backup_az': '',
    'cindernative_backup_container': 'freezer_backups',
    'cindernative_vol_id': '', 'nova_inst_id': '', 'cinder_vol_id': '',
    'cinderbrick_vol_id': '', 'glance_image_id': '', 'engine_name': 'tar',
    'job_id': 'e1d4c52b8f5a4f0c9b6f3a2d1c0b9a88',
}

# A backup document as a well-behaved client writes it (typed values only).
BACKUP = {'container': '/var/backups/freezer', 'backup_name': 'lib-backup',
          'hostname': 'node1', 'path_to_backup': '/srv/data',
          'curr_backup_level': 0, 'level': 0, 'mode': 'fs',
          'storage': 'local', 'engine_name': 'tar', 'compression': 'gzip',
          'time_stamp': 1700000000}


def backup_action(name, path='/srv/data'):
    return {'action': 'backup', 'mode': 'fs', 'path_to_backup': path,
            'backup_name': name, 'container': '/var/backups/freezer',
            'storage': 'local'}


def job_doc(description, name='etc', event='stop'):
    return {'description': description,
            'job_actions': [{'freezer_action': backup_action(name),
                             'max_retries': 2, 'max_retries_interval': 7}],
            'job_schedule': {'schedule_interval': '1 days', 'event': event}}


def register(lib, hostname='node1'):
    """Register the library's own client id, as the scheduler does."""
    client_id = lib.attr('client_id')
    assert lib.clients.create({'client_id': client_id,
                               'hostname': hostname}) == client_id
    return client_id


def test_client_finds_the_api_in_the_catalog(library, account, keystone_api):
    lib = library(account)
    assert lib.attr('endpoint') == keystone_api.url
    assert lib.attr('project_id') == account.project_id
    assert lib.attr('client_id') == (
        f'{account.project_id}_{socket.gethostname()}')
    # the managers build /v2/<project of the token>/<resource>/
    assert lib.attr('jobs.endpoint') == (
        f'{keystone_api.url}/v2/{account.project_id}/jobs/')


def test_endpoint_options(library, account, keystone_api, service):
    # an endpoint that already names the version and project is used as is
    pinned = library(account, endpoint=f'{keystone_api.url}/v2/'
                                       f'{account.project_id}')
    client_id = register(pinned)
    assert [c['client']['client_id'] for c in pinned.clients.list()] == [
        client_id]
    # the internal endpoint from the catalog reaches the same service
    internal = library(account, endpoint_type='internal')
    assert internal.clients.get(client_id)['client']['hostname'] == 'node1'
    assert service(account).ids('clients') == [client_id]


def test_clients(library, account, service):
    lib = library(account)
    svc = service(account)
    client_id = lib.attr('client_id')
    assert lib.clients.create({'client_id': client_id, 'hostname': 'node1',
                               'description': 'first node'}) == client_id
    with pytest.raises(ClientError) as taken:
        lib.clients.create({'client_id': client_id, 'hostname': 'node1'})
    assert taken.value.status_code == 409

    listed = lib.clients.list()
    assert [c['client']['client_id'] for c in listed] == [client_id]
    shown = lib.clients.get(client_id)
    assert shown['client']['hostname'] == 'node1'
    assert shown['client']['description'] == 'first node'
    assert shown['client']['uuid']
    assert shown['project_id'] == account.project_id
    assert shown['user_id'] == account.user_id
    assert lib.clients.list(search={'match': [{'hostname': 'node1'}]})
    assert lib.clients.list(search={'match': [{'hostname': 'node9'}]}) == []
    assert lib.clients.get('no-such-client') is None
    assert svc.get('clients', client_id)['client']['description'] == (
        'first node')

    assert lib.clients.delete(client_id) is None
    assert lib.clients.get(client_id) is None
    svc.get('clients', client_id, expect=404)
    with pytest.raises(ClientError) as gone:
        lib.clients.delete(client_id)
    assert gone.value.status_code == 404


def test_jobs(library, account, service):
    lib = library(account)
    svc = service(account)
    client_id = register(lib)

    # create() fills in the library's own client id
    job_id = lib.jobs.create(job_doc('nightly etc backup'))
    job = lib.jobs.get(job_id)
    assert job['job_id'] == job_id
    assert job['client_id'] == client_id
    assert job['user_id'] == account.user_id
    assert job['project_id'] == account.project_id
    assert job['description'] == 'nightly etc backup'
    assert job['job_schedule']['schedule_interval'] == '1 days'
    assert job['job_schedule']['event'] == 'stop'
    [action] = job['job_actions']
    assert action['max_retries'] == 2
    # each job action is also an action document (the web UI lists them)
    stored_action = svc.get('actions', action['action_id'])
    assert stored_action['freezer_action'] == backup_action('etc')

    other = lib.jobs.create(job_doc('weekly var backup', name='var'))
    assert {j['job_id'] for j in lib.jobs.list()} == {job_id, other}
    assert lib.jobs.list(client_id='someone_else') == []
    found = lib.jobs.list_all(search={'match': [{'_all': 'NIGHTLY'}]})
    assert [j['job_id'] for j in found] == [job_id]
    assert [j['job_id'] for j in lib.jobs.list_all(limit=1)] == [job_id]
    assert [j['job_id'] for j in lib.jobs.list_all(limit=1, offset=1)] == [
        other]

    first = lib.jobs.update(job_id, {'description': 'nightly etc backup 2',
                                     'job_schedule': {
                                         'schedule_interval': '2 days'}})
    second = lib.jobs.update(job_id, {'description': 'nightly etc backup 3'})
    assert isinstance(first, int) and second == first + 1
    job = svc.get('jobs', job_id)
    assert job['description'] == 'nightly etc backup 3'
    assert job['job_schedule']['schedule_interval'] == '2 days'
    assert job['job_schedule']['event'] == 'stop'  # deep merge kept it
    assert job['job_actions'][0]['freezer_action'] == backup_action('etc')

    assert lib.jobs.start_job(job_id) == {'result': 'success'}
    assert lib.jobs.start_job(job_id) == {
        'result': 'start already requested'}
    assert svc.get('jobs', job_id)['job_schedule']['event'] == 'start'
    assert lib.jobs.stop_job(job_id) == {'result': 'success'}
    assert svc.get('jobs', job_id)['job_schedule']['event'] == 'stop'
    assert lib.jobs.abort_job(job_id) == {'result': 'success'}
    assert svc.get('jobs', job_id)['job_schedule']['event'] == 'abort'

    # create() with a job id replaces that job (POST .../jobs/<id>)
    replacement = job_doc('replaced', name='home')
    assert lib.jobs.create(replacement, job_id=job_id) == job_id
    job = svc.get('jobs', job_id)
    assert job['description'] == 'replaced'
    assert job['job_actions'][0]['freezer_action'] == backup_action('home')

    assert lib.jobs.delete(job_id) is None
    assert lib.jobs.get(job_id) is None
    svc.get('jobs', job_id, expect=404)
    with pytest.raises(ClientError) as gone:
        lib.jobs.delete(job_id)
    assert gone.value.status_code == 404
    assert [j['job_id'] for j in lib.jobs.list()] == [other]


def test_jobs_with_referenced_actions(library, account, service):
    """jobs.create with one inline action and one given by action_id, as
    upstream 19.0.0 accepts; the same on replace and update."""
    lib = library(account)
    svc = service(account)
    register(lib)
    action_id = lib.actions.create({
        'freezer_action': backup_action('srv-data'), 'max_retries': 5,
        'max_retries_interval': 11, 'mandatory': True})
    job_id = lib.jobs.create({
        'description': 'inline then referenced',
        'job_actions': [{'freezer_action': backup_action('etc'),
                         'max_retries': 2},
                        {'action_id': action_id}],
        'job_schedule': {'schedule_interval': '1 days', 'event': 'stop'}})
    inline, referenced = lib.jobs.get(job_id)['job_actions']
    assert inline['freezer_action'] == backup_action('etc')
    assert inline['max_retries'] == 2
    assert referenced['action_id'] == action_id
    assert referenced['freezer_action'] == backup_action('srv-data')
    assert (referenced['max_retries'], referenced['max_retries_interval'],
            referenced['mandatory']) == (5, 11, True)
    # the referenced action stays as it was, and is not duplicated
    assert sorted(a['action_id'] for a in lib.actions.list()) == sorted(
        [action_id, inline['action_id']])

    # update and replace take references too, with retry fields of their own
    lib.jobs.update(job_id, {'job_actions': [{'action_id': action_id,
                                              'max_retries': 0}]})
    [patched] = svc.get('jobs', job_id)['job_actions']
    assert patched['action_id'] == action_id
    assert patched['max_retries'] == 0
    assert patched['freezer_action'] == backup_action('srv-data')
    assert lib.jobs.create({'job_actions': [{'action_id': action_id}],
                            'job_schedule': {}}, job_id=job_id) == job_id
    [replaced] = svc.get('jobs', job_id)['job_actions']
    assert replaced['max_retries'] == 5

    # an id the caller cannot see: a clear 4xx, never a 500
    with pytest.raises(ClientError) as unknown:
        lib.jobs.create({'job_actions': [{'action_id': 'no-such-action'}],
                         'job_schedule': {}})
    assert unknown.value.status_code == 422
    assert 'no action found with ID no-such-action' in str(unknown.value)
    assert [j['job_id'] for j in lib.jobs.list()] == [job_id]


def test_actions(library, account, service):
    lib = library(account)
    svc = service(account)
    action_id = lib.actions.create({
        'freezer_action': backup_action('srv-data'), 'max_retries': 3,
        'max_retries_interval': 10, 'mandatory': True})
    action = lib.actions.get(action_id)
    assert action['freezer_action'] == backup_action('srv-data')
    assert action['max_retries'] == 3
    assert action['mandatory'] is True
    assert action['user_id'] == account.user_id
    assert action['project_id'] == account.project_id

    given = uuid.uuid4().hex
    assert lib.actions.create({'freezer_action': backup_action('home'),
                               'action_id': given}) == given
    assert [a['action_id'] for a in lib.actions.list()] == [action_id, given]
    found = lib.actions.list(search={'match': [{'backup_name': 'home'}]})
    assert [a['action_id'] for a in found] == [given]

    version = lib.actions.update(action_id, {
        'freezer_action': {'backup_name': 'srv-data-2'}, 'max_retries': 4})
    assert isinstance(version, int)
    action = svc.get('actions', action_id)
    assert action['freezer_action']['backup_name'] == 'srv-data-2'
    assert action['freezer_action']['path_to_backup'] == '/srv/data'
    assert action['max_retries'] == 4

    assert lib.actions.delete(action_id) is None
    assert lib.actions.get(action_id) is None
    svc.get('actions', action_id, expect=404)
    assert [a['action_id'] for a in lib.actions.list()] == [given]


def test_sessions(library, account, service):
    lib = library(account)
    svc = service(account)
    client_id = register(lib)
    job_id = lib.jobs.create(job_doc('database dump'))

    session_id = lib.sessions.create({
        'description': 'consistent db pair', 'hold_off': 60,
        'schedule': {'schedule_interval': '3 days'}})
    session = lib.sessions.get(session_id)
    assert session['session_id'] == session_id
    assert session['status'] == 'active'
    assert session['session_tag'] == 0
    assert session['jobs'] == {}
    assert session['hold_off'] == 60
    assert session['project_id'] == account.project_id
    assert [s['session_id'] for s in lib.sessions.list()] == [session_id]
    found = lib.sessions.list_all(search={'match': [{'_all': 'DB PAIR'}]})
    assert [s['session_id'] for s in found] == [session_id]
    assert lib.sessions.list_all(search={'match': [{'_all': 'nope'}]}) == []

    version = lib.sessions.update(session_id, {'description': 'db pair',
                                               'hold_off': 30})
    assert isinstance(version, int)
    assert svc.get('sessions', session_id)['hold_off'] == 30

    assert lib.sessions.add_job(session_id, job_id) is None
    job = svc.get('jobs', job_id)
    assert job['session_id'] == session_id
    assert job['session_tag'] == 0
    assert job['job_schedule']['schedule_interval'] == '3 days'
    session = svc.get('sessions', session_id)
    assert list(session['jobs']) == [job_id]
    assert session['jobs'][job_id]['client_id'] == client_id

    started = lib.sessions.start_session(session_id, job_id, 0)
    assert started['result'] == 'success'
    assert started['session_tag'] == 1
    session = svc.get('sessions', session_id)
    assert session['status'] == 'running'
    assert session['session_tag'] == 1

    ended = lib.sessions.end_session(session_id, job_id, 1, 'success')
    assert ended['result'] == 'success'
    session = svc.get('sessions', session_id)
    assert session['status'] == 'completed'
    assert session['result'] == 'success'
    assert session['jobs'][job_id]['result'] == 'success'
    # an end for another run changes nothing
    stale = lib.sessions.end_session(session_id, job_id, 0, 'fail')
    assert stale['result'] == 'out-of-sync'
    assert svc.get('sessions', session_id)['result'] == 'success'

    assert lib.sessions.remove_job(session_id, job_id) is None
    job = svc.get('jobs', job_id)
    assert job['session_id'] == ''
    assert job['job_schedule']['event'] == 'stop'
    assert svc.get('sessions', session_id)['jobs'] == {}

    assert lib.sessions.delete(session_id) is None
    assert lib.sessions.get(session_id) is None
    svc.get('sessions', session_id, expect=404)


def test_backups(library, account, service):
    lib = library(account)
    svc = service(account)
    backup_id = lib.backups.create(BACKUP)
    backup = lib.backups.get(backup_id)
    assert backup['backup_id'] == backup_id
    assert backup['backup_metadata'] == BACKUP
    assert backup['project_id'] == account.project_id
    assert backup['user_id'] == account.user_id

    later = lib.backups.create(dict(BACKUP, time_stamp=1700000100))
    assert [b['backup_id'] for b in lib.backups.list()] == [backup_id, later]
    after = lib.backups.list(search={'time_after': 1700000050})
    assert [b['backup_id'] for b in after] == [later]
    before = lib.backups.list(search={'time_before': 1700000050})
    assert [b['backup_id'] for b in before] == [backup_id]
    named = lib.backups.list(search={'match': [
        {'backup_name': 'lib-backup'}]})
    assert len(named) == 2

    # v2 shows upstream's current shape (the API test suite compares it
    # whole): a status, and no user_name
    assert svc.get('backups', backup_id) == {
        'backup_id': backup_id, 'user_id': account.user_id,
        'project_id': account.project_id, 'status': 'available',
        'backup_metadata': BACKUP, '_version': 1}
    assert 'user_name' not in lib.backups.list()[0]

    answer = lib.backups.update(backup_id, {'status': 'error'})
    assert answer == {'backup_id': backup_id, 'version': 2}
    assert svc.get('backups', backup_id)['status'] == 'error'
    # backups.update with backup_metadata: deep-merged, checked again
    answer = lib.backups.update(backup_id, {'backup_metadata': {
        'level': 1, 'backup_size_compressed': '1024', 'note': 'verified'}})
    assert answer == {'backup_id': backup_id, 'version': 3}
    assert lib.backups.get(backup_id)['backup_metadata'] == {
        **BACKUP, 'level': 1, 'backup_size_compressed': 1024,
        'note': 'verified'}
    with pytest.raises(ClientError) as refused:
        lib.backups.update(backup_id, {'backup_metadata': {'container': ''}})
    assert refused.value.status_code == 400
    assert svc.get('backups', backup_id)['_version'] == 3

    assert lib.backups.delete(backup_id) is None
    assert lib.backups.get(backup_id) is None
    svc.get('backups', backup_id, expect=404)
    assert svc.ids('backups') == [later]


def test_backups_accept_the_agent_metadata(library, account, service):
    """The document freezer-scheduler posts after each agent run."""
    lib = library(account)
    backup_id = lib.backups.create(AGENT_METADATA)
    stored = service(account).get('backups', backup_id)
    # the agent's "" for an unset max_level is stored as null (unset)
    assert AGENT_METADATA['max_level'] == ''
    assert stored['backup_metadata'] == {**AGENT_METADATA,
                                         'max_level': None}
    found = lib.backups.list(search={'match': [
        {'job_id': AGENT_METADATA['job_id']}]})
    assert [b['backup_id'] for b in found] == [backup_id]


def test_backups_from_older_agents_keep_their_numbers(
        library, account, service):
    """Floats and numeric strings in sizes and levels are never a reason to
    lose a backup record; they are stored as the numbers they mean."""
    lib = library(account)
    backup_id = lib.backups.create({
        **BACKUP, 'time_stamp': '1700000000', 'level': 1.0,
        'curr_backup_level': '0', 'backup_size_uncompressed': 10.5,
        'backup_size_compressed': '4096', 'max_level': ''})
    stored = service(account).get('backups', backup_id)['backup_metadata']
    assert stored == {**BACKUP, 'time_stamp': 1700000000, 'level': 1,
                      'curr_backup_level': 0,
                      'backup_size_uncompressed': 10.5,
                      'backup_size_compressed': 4096, 'max_level': None}
    after = lib.backups.list(search={'time_after': 1699999999})
    assert [b['backup_id'] for b in after] == [backup_id]
    with pytest.raises(ClientError) as refused:
        lib.backups.create({**BACKUP, 'level': 'first'})
    assert refused.value.status_code == 400


def test_client_and_session_shapes(library, account, service):
    """The four supported_* lists, and upstream's session defaults."""
    lib = library(account)
    client_id = register(lib)
    info = lib.clients.get(client_id)['client']
    assert info['supported_actions'] == ['backup', 'restore', 'info',
                                         'admin', 'exec']
    assert info['supported_modes'] == ['fs', 'mongo', 'mysql', 'sqlserver',
                                       'cinder', 'glance', 'cindernative',
                                       'nova']
    assert info['supported_storages'] == ['local', 'swift', 'ssh', 's3',
                                          'ftp', 'ftps']
    assert info['supported_engines'] == ['tar', 'rsync', 'rsyncv2', 'nova',
                                         'osbrick', 'glance']
    assert lib.clients.list()[0]['client'] == info

    job_id = lib.jobs.create(job_doc('database dump'))
    session_id = lib.sessions.create({
        'description': 'no hold-off window', 'hold_off': 0,
        'schedule': {'schedule_interval': '3 days'}})
    session = lib.sessions.get(session_id)
    assert (session['time_started'], session['time_ended']) == (-1, -1)
    assert (session['time_start'], session['time_end']) == (-1, -1)
    assert session['hold_off'] == 0
    lib.sessions.add_job(session_id, job_id)
    assert lib.sessions.get(session_id)['jobs'][job_id] == {
        'client_id': client_id, 'status': '', 'result': '',
        'time_started': -1, 'time_ended': -1}
    # no window: a start with the current tag opens a new run at once
    assert lib.sessions.start_session(session_id, job_id, 0)[
        'session_tag'] == 1
    assert lib.sessions.start_session(session_id, job_id, 1)[
        'session_tag'] == 2
    # an update without changes changes nothing
    version = service(account).get('sessions', session_id)['_version']
    assert lib.sessions.update(session_id, {}) == version


def test_projects_and_roles_are_enforced(library, new_account, keystone_api):
    owner, stranger = new_account(), new_account()
    reader = keystone_api.keystone.new_account(owner.project_name, 'reader')
    mine = library(owner, name='owner')
    register(mine)
    job_id = mine.jobs.create(job_doc('private'))
    backup_id = mine.backups.create(BACKUP)

    theirs = library(stranger, name='stranger')
    assert theirs.jobs.get(job_id) is None
    assert theirs.jobs.list_all() == []
    assert theirs.backups.get(backup_id) is None
    assert theirs.clients.list() == []
    with pytest.raises(ClientError) as denied:
        theirs.jobs.delete(job_id)
    assert denied.value.status_code == 404

    # a reader of the owner's project reads everything and writes nothing
    looker = library(reader, name='reader')
    assert [j['job_id'] for j in looker.jobs.list_all()] == [job_id]
    assert looker.backups.get(backup_id)['backup_id'] == backup_id
    with pytest.raises(ClientError) as read_only:
        looker.jobs.update(job_id, {'description': 'mine now'})
    assert read_only.value.status_code == 403
    assert mine.jobs.get(job_id)['description'] == 'private'
