"""The ``freezer`` CLI of python-freezerclient (pinned in
tests.fixtures.openstack_clients), authenticated with OS_* variables
against the real Keystone, finding freezer-api in the catalog.

Every command group is run, and what it did is checked on the service side
with plain HTTP and the user's token. Each test is a fresh user of a fresh
project.
"""

import socket

# Quirks of the CLI itself, the same against any server:
#
# * list commands print one row of empty strings when nothing matched, so
#   ``listed`` drops rows without an id;
# * backup-list puts a datetime in its rows and cannot print them with
#   ``-f json`` ("Object of type datetime is not JSON serializable"), so
#   it is read through ``-f csv``;
# * backup-show and backup-create display the field ``backup_uuid`` as
#   "Backup ID", a field no freezer-api version returns (the id is
#   ``backup_id``), so they show null there;
# * client-register turns any API error into "'ApiClientException' object
#   has no attribute 'message'" (Python 2 ``err.message``), so only the
#   exit status of a refused registration can be checked.


def listed(rows, key):
    return [row[key] for row in rows if row.get(key)]


def test_client_commands(cli, account, service):
    freezer = cli(account)
    svc = service(account)
    client_file = freezer.write('client.json', {
        'client_id': 'cli_node1', 'hostname': 'node1',
        'description': 'first cli node'})

    shown = freezer.json('client-register', '--file', client_file)
    assert shown['Client ID'] == 'cli_node1'
    assert shown['hostname'] == 'node1'
    assert shown['description'] == 'first cli node'
    assert shown['Client UUID']
    stored = svc.get('clients', 'cli_node1')
    assert stored['client']['uuid'] == shown['Client UUID']
    assert stored['user_id'] == account.user_id

    # the API answers 409; the CLI exits non-zero (see the quirks above)
    again = freezer.run('client-register', '--file', client_file, ok=False)
    assert again.returncode != 0
    assert svc.ids('clients') == ['cli_node1']

    assert listed(freezer.json('client-list'), 'Client ID') == ['cli_node1']
    assert listed(freezer.json('client-list', '--search', 'FIRST CLI'),
                  'Client ID') == ['cli_node1']
    assert listed(freezer.json('client-list', '--search', 'nothing'),
                  'Client ID') == []
    assert freezer.json('client-show', 'cli_node1')['hostname'] == 'node1'

    freezer.run('client-delete', 'cli_node1')
    svc.get('clients', 'cli_node1', expect=404)
    missing = freezer.run('client-show', 'cli_node1', ok=False)
    assert missing.returncode != 0
    assert 'Client not found' in missing.stdout + missing.stderr


def test_job_commands(cli, account, service):
    freezer = cli(account)
    svc = service(account)
    freezer.run('client-register', '--file', freezer.write(
        'client.json', {'client_id': 'cli_jobs', 'hostname': 'node2'}))
    job_file = freezer.write('job.json', {
        'description': 'nightly etc backup',
        'job_actions': [{'freezer_action': {
            'action': 'backup', 'mode': 'fs', 'path_to_backup': '/etc',
            'backup_name': 'etc', 'container': '/var/backups/freezer',
            'storage': 'local'}, 'max_retries': 3,
            'max_retries_interval': 5}],
        'job_schedule': {'schedule_interval': '1 days', 'event': 'stop'}})

    created = freezer.json('job-create', '--file', job_file,
                           '--client', 'cli_jobs')
    job_id = created['Job ID']
    assert created['Client ID'] == 'cli_jobs'
    assert created['User ID'] == account.user_id
    assert created['Description'] == 'nightly etc backup'
    assert created['Interval'] == '1 days'
    assert created['Event'] == 'stop'
    job = svc.get('jobs', job_id)
    assert job['client_id'] == 'cli_jobs'
    assert job['job_actions'][0]['freezer_action']['backup_name'] == 'etc'
    assert job['job_actions'][0]['max_retries'] == 3

    rows = freezer.json('job-list')
    assert listed(rows, 'Job ID') == [job_id]
    assert rows[0]['# Actions'] == 1
    assert listed(freezer.json('job-list', '--search', 'NIGHTLY'),
                  'Job ID') == [job_id]
    assert listed(freezer.json('job-list', '--search', 'weekly'),
                  'Job ID') == []
    assert listed(freezer.json('job-list', '--client', 'cli_jobs'),
                  'Job ID') == [job_id]
    assert listed(freezer.json('job-list', '--client', 'other'),
                  'Job ID') == []
    assert freezer.json('job-show', job_id)['Description'] == (
        'nightly etc backup')

    update_file = freezer.write('job-update.json', {
        'description': 'nightly etc backup, kept 2 days',
        'job_schedule': {'schedule_interval': '2 days'}})
    updated = freezer.json('job-update', job_id, update_file)
    assert updated['Description'] == 'nightly etc backup, kept 2 days'
    assert updated['Interval'] == '2 days'
    assert updated['Event'] == 'stop'
    assert svc.get('jobs', job_id)['job_actions'][0]['freezer_action'][
        'path_to_backup'] == '/etc'

    for command, event in (('job-start', 'start'), ('job-stop', 'stop'),
                           ('job-abort', 'abort')):
        freezer.run(command, job_id)
        assert svc.get('jobs', job_id)['job_schedule']['event'] == event

    freezer.run('job-delete', job_id)
    svc.get('jobs', job_id, expect=404)
    assert freezer.run('job-show', job_id, ok=False).returncode != 0


def test_action_commands(cli, account, service):
    freezer = cli(account)
    svc = service(account)
    action_file = freezer.write('action.json', {
        'freezer_action': {
            'action': 'backup', 'mode': 'fs', 'path_to_backup': '/srv/data',
            'backup_name': 'srv-data', 'container': '/var/backups/freezer',
            'storage': 'local', 'log_file': '/var/log/freezer-agent.log',
            'remove_older_than': 7},
        'max_retries': 2, 'max_retries_interval': 9})

    created = freezer.json('action-create', '--file', action_file)
    action_id = created['Action ID']
    assert created['Name'] == 'srv-data'
    assert created['Path to Backup or Restore'] == '/srv/data'
    assert created['Storage'] == 'local'
    assert created['Container'] == '/var/backups/freezer'
    assert created['Remove_older_than'] == 7
    assert created['Max_retries'] == 2
    assert created['User_id'] == account.user_id
    assert created['Project_id'] == account.project_id
    assert svc.get('actions', action_id)['max_retries_interval'] == 9

    assert listed(freezer.json('action-list'), 'Action ID') == [action_id]
    assert listed(freezer.json('action-list', '--search', 'SRV-DATA'),
                  'Action ID') == [action_id]
    assert listed(freezer.json('action-list', '--search', 'nope'),
                  'Action ID') == []

    updated = freezer.json('action-update', action_id, freezer.write(
        'action-update.json', {'freezer_action': {'backup_name': 'srv-2'},
                               'max_retries': 4}))
    assert updated['Name'] == 'srv-2'
    assert updated['Max_retries'] == 4
    stored = svc.get('actions', action_id)
    assert stored['freezer_action']['backup_name'] == 'srv-2'
    assert stored['freezer_action']['path_to_backup'] == '/srv/data'
    assert freezer.json('action-show', action_id)['Name'] == 'srv-2'

    freezer.run('action-delete', action_id)
    svc.get('actions', action_id, expect=404)
    assert freezer.run('action-show', action_id, ok=False).returncode != 0


def test_session_commands(cli, account, service):
    freezer = cli(account)
    svc = service(account)
    freezer.run('client-register', '--file', freezer.write(
        'client.json', {'client_id': 'cli_sessions', 'hostname': 'node3'}))
    job_id = freezer.json('job-create', '--client', 'cli_sessions', '--file',
                          freezer.write('job.json', {
                              'description': 'db dump',
                              'job_actions': [],
                              'job_schedule': {'event': 'stop'}}))['Job ID']

    created = freezer.json('session-create', '--file', freezer.write(
        'session.json', {'description': 'consistent db pair',
                         'hold_off': 60,
                         'schedule': {'schedule_interval': '3 days'}}))
    session_id = created['Session ID']
    assert created['Status'] == 'active'
    assert created['Session tag'] == 0
    assert created['Hold off'] == 60
    assert created['Project id'] == account.project_id
    assert created['User id'] == account.user_id
    assert svc.get('sessions', session_id)['jobs'] == {}

    assert listed(freezer.json('session-list'), 'Session ID') == [
        session_id]
    assert listed(freezer.json('session-list', '--search', 'DB PAIR'),
                  'Session ID') == [session_id]
    assert listed(freezer.json('session-list', '--search', 'nope'),
                  'Session ID') == []

    updated = freezer.json('session-update', session_id, freezer.write(
        'session-update.json', {'description': 'db pair', 'hold_off': 30}))
    assert updated['Description'] == 'db pair'
    assert updated['Hold off'] == 30

    freezer.run('session-add-job', '--session-id', session_id,
                '--job-id', job_id)
    job = svc.get('jobs', job_id)
    assert job['session_id'] == session_id
    assert job['job_schedule']['schedule_interval'] == '3 days'
    assert list(svc.get('sessions', session_id)['jobs']) == [job_id]
    shown = freezer.json('session-show', session_id)
    assert job_id in shown['Jobs']

    # NOTE: the CLI sends the tag as the string it was given ("0").
    freezer.run('session-start', '--session-id', session_id,
                '--job-id', job_id, '--job-tag', '0')
    session = svc.get('sessions', session_id)
    assert session['status'] == 'running'
    assert session['session_tag'] == 1

    freezer.run('session-remove-job', '--session-id', session_id,
                '--job-id', job_id)
    job = svc.get('jobs', job_id)
    assert job['session_id'] == ''
    assert job['job_schedule']['event'] == 'stop'
    assert svc.get('sessions', session_id)['jobs'] == {}

    freezer.run('session-delete', session_id)
    svc.get('sessions', session_id, expect=404)
    assert freezer.run('session-show', session_id, ok=False).returncode != 0


def test_backup_commands(cli, account, service):
    freezer = cli(account)
    svc = service(account)
    metadata = {'container': '/var/backups/freezer',
                'backup_name': 'cli-backup', 'hostname': 'node4',
                'path_to_backup': '/srv/data', 'time_stamp': 1700000000,
                'curr_backup_level': 0, 'level': 0, 'mode': 'fs',
                'action': 'backup', 'storage': 'local',
                'engine_name': 'tar'}
    created = freezer.json('backup-create', '--file',
                           freezer.write('backup.json', metadata))
    assert created['Project ID'] == account.project_id
    assert created['User ID'] == account.user_id
    assert "'backup_name': 'cli-backup'" in created['Metadata']
    [stored] = svc.list('backups')
    backup_id = stored['backup_id']
    assert stored['backup_metadata'] == metadata

    rows = freezer.rows('backup-list')
    assert listed(rows, 'Backup ID') == [backup_id]
    assert rows[0]['Hostname'] == 'node4'
    assert rows[0]['Path'] == '/srv/data'
    assert rows[0]['Level'] == '0'
    assert listed(freezer.rows('backup-list', '--search', 'CLI-BACKUP'),
                  'Backup ID') == [backup_id]
    assert listed(freezer.rows('backup-list', '--search', 'nope'),
                  'Backup ID') == []
    shown = freezer.json('backup-show', backup_id)
    assert "'hostname': 'node4'" in shown['Metadata']

    freezer.run('backup-delete', backup_id)
    svc.get('backups', backup_id, expect=404)
    assert freezer.run('backup-show', backup_id, ok=False).returncode != 0


def test_endpoint_options(cli, account, keystone_api):
    freezer = cli(account)
    freezer.run('client-register', '--file', freezer.write(
        'client.json', {'client_id': 'cli_endpoints',
                        'hostname': socket.gethostname()}))
    for options in (['--os-backup-url', keystone_api.url],
                    ['--os-backup-url',
                     f'{keystone_api.url}/v2/{account.project_id}'],
                    ['--os-endpoint-type', 'internal']):
        assert listed(freezer.json(*options, 'client-list'),
                      'Client ID') == ['cli_endpoints'], options


def test_job_with_a_referenced_action(cli, account, service):
    """job-create with a job action given by the id of an existing action
    (as in upstream 19.0.0); the job runs that action's freezer_action."""
    freezer = cli(account)
    svc = service(account)
    freezer.run('client-register', '--file', freezer.write(
        'client.json', {'client_id': 'cli_refs', 'hostname': 'node5'}))
    action_id = freezer.json('action-create', '--file', freezer.write(
        'action.json', {'freezer_action': {
            'action': 'backup', 'mode': 'fs', 'path_to_backup': '/srv',
            'backup_name': 'srv', 'container': '/var/backups/freezer',
            'storage': 'local'}, 'max_retries': 6}))['Action ID']
    created = freezer.json('job-create', '--client', 'cli_refs', '--file',
                           freezer.write('job.json', {
                               'description': 'by reference',
                               'job_actions': [{'action_id': action_id}],
                               'job_schedule': {'event': 'stop'}}))
    job = svc.get('jobs', created['Job ID'])
    [entry] = job['job_actions']
    assert entry['action_id'] == action_id
    assert entry['freezer_action']['path_to_backup'] == '/srv'
    assert entry['max_retries'] == 6
    assert freezer.json('job-show', created['Job ID'])['Description'] == (
        'by reference')
    assert listed(freezer.json('action-list'), 'Action ID') == [action_id]

    refused = freezer.run('job-create', '--client', 'cli_refs', '--file',
                          freezer.write('bad-job.json', {
                              'job_actions': [{'action_id': 'nowhere'}],
                              'job_schedule': {}}), ok=False)
    assert refused.returncode != 0
    assert 'no action found with ID nowhere' in (refused.stdout
                                                 + refused.stderr)
    assert svc.ids('jobs') == [created['Job ID']]


def test_shapes_the_cli_shows(cli, account, service):
    """Session job entries with upstream's defaults, client documents with
    their lists, and an older agent's numeric strings kept as numbers."""
    freezer = cli(account)
    svc = service(account)
    freezer.run('client-register', '--file', freezer.write(
        'client.json', {'client_id': 'cli_shapes', 'hostname': 'node6'}))
    info = svc.get('clients', 'cli_shapes')['client']
    assert 'exec' in info['supported_actions']
    assert all(info[name] for name in (
        'supported_modes', 'supported_storages', 'supported_engines'))
    job_id = freezer.json('job-create', '--client', 'cli_shapes', '--file',
                          freezer.write('job.json', {
                              'job_actions': [],
                              'job_schedule': {'event': 'stop'}}))['Job ID']
    session_id = freezer.json('session-create', '--file', freezer.write(
        'session.json', {'hold_off': -1, 'schedule': {}}))['Session ID']
    freezer.run('session-add-job', '--session-id', session_id,
                '--job-id', job_id)
    shown = freezer.json('session-show', session_id)
    assert shown['Hold off'] == -1
    assert "'time_started': -1" in shown['Jobs']
    assert "'time_ended': -1" in shown['Jobs']
    session = svc.get('sessions', session_id)
    assert (session['time_started'], session['time_ended']) == (-1, -1)

    created = freezer.json('backup-create', '--file', freezer.write(
        'backup.json', {'container': '/var/backups/freezer',
                        'backup_name': 'old-agent', 'hostname': 'node6',
                        'time_stamp': '1700000000', 'level': 2.0,
                        'backup_size_compressed': '12.5'}))
    assert created['Project ID'] == account.project_id
    [stored] = svc.list('backups')
    assert stored['status'] == 'available'
    assert 'user_name' not in stored
    metadata = stored['backup_metadata']
    assert (metadata['time_stamp'], metadata['level'],
            metadata['backup_size_compressed']) == (1700000000, 2, 12.5)
