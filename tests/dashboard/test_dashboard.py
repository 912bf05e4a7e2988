"""The operators' dashboard: freezer-web-ui 19.0.0 in Horizon 27, in
headless Chromium, against this service behind the real Keystone.

Each test logs in through Horizon's login form as a fresh member of a
fresh project, works through the plugin's pages and dialogs as a person
does, and reads the result back from the API with plain HTTP and the
member's token. Every page shown is checked for Horizon's server error
page and error messages, and (in ``conftest``) Horizon's log for errors
and the API's log for 5xx answers.

What the UI sends that the service refused is listed by
``api_refusals()``; the flows must cause none (the plugin hides some
refusals: ``Session.remove_job`` swallows every error).
"""

import re

from tests.dashboard import flows

CLIENT_HOST = 'db1.example'
ACTION_FIELDS = {'action': 'backup', 'mode': 'fs', 'storage': 'local',
                 'engine_name': 'tar', 'path_to_backup': '/srv/data',
                 'container': '/var/backups/freezer'}
ACTION_RULES = {'max_retries': 3, 'max_retries_interval': 45,
                'mandatory': True}
ACTION_ADVANCED = {'log_file': '/var/log/freezer-agent.log',
                   'exclude': '*.tmp', 'max_level': 2}


def register_client(api, hostname=CLIENT_HOST, **extra):
    """What freezer-scheduler registers on start."""
    client_id = f'{api.account.project_id}_{hostname}'
    api.request('POST', '/clients/', expect=201, json={
        'client_id': client_id, 'hostname': hostname,
        'description': f'scheduler on {hostname}', **extra})
    return client_id


def api_action(api, name, **fields):
    body = {'freezer_action': {'action': 'backup', 'mode': 'fs',
                               'backup_name': name, 'storage': 'local',
                               'path_to_backup': '/etc',
                               'container': '/var/backups', **fields},
            'max_retries': 1, 'max_retries_interval': 5}
    return api.request('POST', '/actions/', expect=201,
                       json=body).json()['action_id']


def api_job(api, client_id, description, action_name='etc'):
    """A job as python-freezerclient's ``jobs.create`` posts it."""
    body = {'description': description, 'client_id': client_id,
            'job_schedule': {'schedule_interval': '1 days'},
            'job_actions': [{'freezer_action': {
                'action': 'backup', 'mode': 'fs', 'storage': 'local',
                'backup_name': action_name, 'path_to_backup': '/etc',
                'container': '/var/backups'}, 'max_retries': 2}]}
    return api.request('POST', '/jobs/', expect=201,
                       json=body).json()['job_id']


def agent_backup(hostname, job_id, time_stamp, level=0):
    """Backup metadata as freezer-scheduler posts what freezer-agent
    printed (``--metadata-out``), with ``job_id`` added."""
    return {
        'action': 'backup', 'always_level': '', 'backup_media': 'fs',
        'backup_name': 'etc-nightly', 'container': '/var/backups/freezer',
        'container_segments': '', 'curr_backup_level': level,
        'dry_run': '', 'hostname': hostname, 'level': level,
        'path_to_backup': '/etc', 'max_level': '', 'mode': 'fs',
        'fs_real_path': '/etc', 'vol_snap_path': '/etc',
        'total_broken_links': 0, 'total_fs_files': 120,
        'total_directories': 14, 'backup_size_uncompressed': 5234,
        'backup_size_compressed': 1200, 'compression': 'gzip',
        'encrypted': False, 'client_os': 'linux', 'client_version': '19.0.0',
        'time_stamp': time_stamp, 'storage': 'local', 'engine_name': 'tar',
        'consistency_checksum': '', 'excluded_files': [], 'job_id': job_id,
    }


def post_backup(api, metadata):
    return api.request('POST', '/backups/', expect=201,
                       json=metadata).json()['backup_id']


def only(items, what):
    assert len(items) == 1, f'expected one {what}, got {items}'
    return items[0]


# -- clients ---------------------------------------------------------------

def test_clients_page_lists_registered_clients(account, dashboard,
                                               service, server_logs):
    api = service(account)
    first = register_client(api)
    second = register_client(
        api, 'web1.example', supported_actions=['backup', 'restore'],
        supported_modes=['fs'], supported_storages=['local', 'swift'],
        supported_engines=['tar'])

    ui = dashboard(account)
    ui.open(flows.PANELS['clients'], 'clients')
    rows = {row[1]: row[2] for row in ui.table_rows()}
    assert rows == {first: CLIENT_HOST, second: 'web1.example'}

    ui.open(f'{flows.PANELS["clients"]}{second}', 'client detail')
    text = ui.body_text()
    assert second in text and 'web1.example' in text

    flows.row_action(ui, 'clients', first, 'Delete Client', confirm=True)
    assert api.ids('clients') == [second]
    assert [row[1] for row in ui.table_rows()] == [second]
    assert server_logs.api_refusals() == []


# -- actions and jobs ------------------------------------------------------

def test_action_then_job_through_the_forms(account, dashboard, service,
                                           server_logs):
    api = service(account)
    client_id = register_client(api)
    ui = dashboard(account)

    flows.create_action(ui, 'etc nightly', ACTION_FIELDS, ACTION_RULES,
                        ACTION_ADVANCED)
    action = only(api.list('actions'), 'action')
    assert ui.table_rows()[0][1:6] == ['etc_nightly', 'backup', '/srv/data',
                                       'local', 'fs']
    freezer_action = action['freezer_action']
    # the form replaces spaces in the name (the agent's tar metadata
    # file name cannot hold them)
    assert freezer_action['backup_name'] == 'etc_nightly'
    for field, value in ACTION_FIELDS.items():
        assert freezer_action[field] == value, field
    assert freezer_action['log_file'] == ACTION_ADVANCED['log_file']
    assert freezer_action['exclude'] == ACTION_ADVANCED['exclude']
    assert freezer_action['max_level'] == ACTION_ADVANCED['max_level']
    assert {key: action[key] for key in ACTION_RULES} == ACTION_RULES
    ui.open(f'{flows.PANELS["actions"]}action/{action["action_id"]}',
            'action detail')
    assert '/srv/data' in ui.body_text()

    flows.create_job(ui, 'etc every two days', [CLIENT_HOST],
                     [action['action_id']],
                     {'start': '2027-03-04T05:06', 'unit': 'days',
                      'value': 2, 'end': '2027-12-31T23:30'})
    job = only(api.list('jobs'), 'job')
    assert job['description'] == 'etc every two days'
    assert job['client_id'] == client_id
    schedule = job['job_schedule']
    assert {key: schedule.get(key) for key in (
        'schedule_start_date', 'schedule_interval', 'schedule_end_date',
        'event')} == {'schedule_start_date': '2027-03-04T05:06:00',
                      'schedule_interval': '2 days',
                      'schedule_end_date': '2027-12-31T23:30:00',
                      # the dialog stops every job it creates
                      'event': 'stop'}
    job_action = only(job['job_actions'], 'job action')
    assert job_action['action_id'] == action['action_id']
    for key in ('max_retries', 'max_retries_interval', 'mandatory'):
        assert job_action[key] == action[key], key
    assert {key: value for key, value in
            job_action['freezer_action'].items() if value is not None} == {
        key: value for key, value in freezer_action.items()
        if value is not None}
    row = only([r for r in ui.table_rows() if 'etc every two days' in r],
               'job row')
    assert CLIENT_HOST in row[2]

    flows.edit_job(ui, 'etc every two days', 'etc weekly',
                   '2027-04-01T01:00:00', '1 weeks', '2028-01-01T00:00:00')
    edited = api.get('jobs', job['job_id'])
    assert edited['description'] == 'etc weekly'
    assert {key: edited['job_schedule'].get(key) for key in (
        'schedule_start_date', 'schedule_interval',
        'schedule_end_date')} == {
        'schedule_start_date': '2027-04-01T01:00:00',
        'schedule_interval': '1 weeks',
        'schedule_end_date': '2028-01-01T00:00:00'}
    # the edit changed nothing else
    assert edited['client_id'] == client_id
    assert edited['job_actions'] == job['job_actions']
    assert edited['job_schedule']['time_created'] == \
        schedule['time_created']

    ui.open(f'{flows.PANELS["jobs"]}{job["job_id"]}', 'job detail')
    assert 'etc weekly' in ui.body_text()
    ui.open(f'{flows.PANELS["jobs"]}edit_actions/{job["job_id"]}',
            'edit actions in job')
    assert server_logs.api_refusals() == []


def test_edit_actions_and_the_actions_of_a_job(account, dashboard,
                                               service, server_logs):
    api = service(account)
    client_id = register_client(api)
    etc = api_action(api, 'etc')
    home = api_action(api, 'home', path_to_backup='/home')
    # a job naming the action, as python-freezerclient users build one
    job_id = api.request('POST', '/jobs/', expect=201, json={
        'description': 'etc daily', 'client_id': client_id,
        'job_schedule': {}, 'job_actions': [api.get('actions', etc)]}
    ).json()['job_id']
    ui = dashboard(account)

    flows.edit_action(ui, 'home', {'path_to_backup': '/home/alice'})
    assert api.get('actions', home)['freezer_action']['path_to_backup'] == \
        '/home/alice'

    flows.edit_job_actions(ui, 'etc daily', add=[home])
    job = api.get('jobs', job_id)
    assert [a['action_id'] for a in job['job_actions']] == [etc, home]
    assert job['job_actions'][1]['freezer_action']['path_to_backup'] == \
        '/home/alice'
    assert sorted(api.ids('actions')) == sorted([etc, home])

    flows.row_action(ui, 'actions', 'home', 'Delete Action', confirm=True)
    assert api.ids('actions') == [etc]
    # the job keeps its copy
    assert api.get('jobs', job_id)['job_actions'] == job['job_actions']
    assert server_logs.api_refusals() == []


def test_clone_start_stop_delete_a_job(account, dashboard, service,
                                       server_logs):
    api = service(account)
    client_id = register_client(api)
    original_id = api_job(api, client_id, 'etc daily')
    original = api.get('jobs', original_id)
    ui = dashboard(account)

    flows.job_row_action(ui, 'etc daily', 'Clone Job')
    jobs = {job['description']: job for job in api.list('jobs')}
    assert set(jobs) == {'etc daily', 'etc daily_clone'}
    clone = jobs['etc daily_clone']
    assert clone['job_id'] != original_id
    assert clone['client_id'] == client_id
    assert [a['freezer_action'] for a in clone['job_actions']] == \
        [a['freezer_action'] for a in original['job_actions']]
    assert clone['job_schedule']['schedule_interval'] == '1 days'
    assert clone['job_schedule']['event'] == 'stop'
    assert api.get('jobs', original_id) == original

    flows.job_row_action(ui, 'etc daily_clone', 'Start Job')
    assert 'Job has started' in ' '.join(ui.success_messages())
    started = api.get('jobs', clone['job_id'])['job_schedule']
    assert (started['event'], started.get('status', '')) == ('start', '')

    # The plugin offers Stop only for a job whose status is set, which is
    # the scheduler's part: PATCH the status as freezer-scheduler does
    # when it takes the job up.
    api.request('PATCH', f'/jobs/{clone["job_id"]}', json={
        'job_schedule': {'event': '', 'status': 'scheduled'}})
    flows.job_row_action(ui, 'etc daily_clone', 'Stop Job')
    assert 'Job has stopped' in ' '.join(ui.success_messages())
    assert api.get('jobs', clone['job_id'])['job_schedule']['event'] == \
        'stop'

    # (the plugin labels it so)
    flows.job_row_action(ui, 'etc daily_clone', 'Delete Job File',
                         confirm=True)
    assert api.get('jobs', clone['job_id'], expect=404) is None
    assert [job['job_id'] for job in api.list('jobs')] == [original_id]
    assert [row[1] for row in ui.table_rows()] == ['etc daily']
    # the only refusal: this test's own check that the clone is gone
    assert server_logs.api_refusals() == [
        ('GET', f'{api.prefix}/jobs/{clone["job_id"]}', 404)]


# -- sessions --------------------------------------------------------------

def test_session_with_jobs_through_the_forms(account, dashboard, service,
                                             server_logs):
    api = service(account)
    client_id = register_client(api)
    first = api_job(api, client_id, 'etc daily')
    second = api_job(api, client_id, 'home daily', 'home')
    ui = dashboard(account)

    flows.create_session(ui, 'nightly window',
                         {'start': '2027-05-01T22:00', 'unit': 'hours',
                          'value': 12, 'end': '2027-06-01T06:00'},
                         jobs=['etc daily', 'home daily'])
    session = only(api.list('sessions'), 'session')
    assert session['description'] == 'nightly window'
    assert {key: session['schedule'].get(key) for key in (
        'schedule_start_date', 'schedule_interval',
        'schedule_end_date')} == {
        'schedule_start_date': '2027-05-01T22:00:00',
        'schedule_interval': '12 hours',
        'schedule_end_date': '2027-06-01T06:00:00'}
    assert set(session['jobs']) == {first, second}
    for job_id in (first, second):
        job = api.get('jobs', job_id)
        assert job['session_id'] == session['session_id']
        assert session['jobs'][job_id]['client_id'] == client_id
    assert only([row for row in ui.table_rows()
                 if 'nightly window' in row], 'session row')

    ui.open(f'{flows.PANELS["sessions"]}{session["session_id"]}',
            'session detail')
    assert 'nightly window' in ui.body_text()

    flows.edit_session(ui, 'nightly window', 'nightly window 2',
                       {'start': '2027-05-02T21:00', 'unit': 'days',
                        'value': 1})
    edited = api.get('sessions', session['session_id'])
    assert edited['description'] == 'nightly window 2'
    assert {key: edited['schedule'].get(key) for key in (
        'schedule_start_date', 'schedule_interval')} == {
        'schedule_start_date': '2027-05-02T21:00:00',
        'schedule_interval': '1 days'}
    assert set(edited['jobs']) == {first, second}

    flows.manage_session_jobs(ui, 'nightly window 2', remove=['home daily'])
    session = api.get('sessions', session['session_id'])
    assert set(session['jobs']) == {first}
    assert api.get('jobs', second)['session_id'] == ''
    assert api.get('jobs', first)['session_id'] == session['session_id']

    flows.session_row_action(ui, 'nightly window 2', 'Delete Session',
                             confirm=True)
    assert api.list('sessions') == []
    assert api.get('sessions', session['session_id'], expect=404) is None
    # deleting a session detaches its jobs (spec D10)
    assert api.get('jobs', first)['session_id'] == ''
    # the only refusal: this test's own check that the session is gone
    assert server_logs.api_refusals() == [
        ('GET', f'{api.prefix}/sessions/{session["session_id"]}', 404)]


# -- backups ---------------------------------------------------------------

def test_backups_page_shows_what_agents_posted(account, dashboard,
                                               service, server_logs):
    api = service(account)
    client_id = register_client(api)
    job_id = api_job(api, client_id, 'etc daily')
    stamps = (1_780_000_000, 1_780_086_400)
    backup_ids = [post_backup(api, agent_backup(CLIENT_HOST, job_id, stamp,
                                                level))
                  for level, stamp in enumerate(stamps)]
    ui = dashboard(account)

    ui.open(flows.PANELS['backups'], 'backups')
    rows = ui.table_rows()
    assert len(rows) == 2, rows
    for row in rows:
        assert row[1:4] == ['etc-nightly', CLIENT_HOST, 'available'], row
        assert re.search(r'\d', row[4]), row

    ui.open(f'{flows.PANELS["backups"]}{backup_ids[1]}', 'backup detail')
    text = ui.body_text()
    for shown in ('etc-nightly', CLIENT_HOST, '/etc',
                  '/var/backups/freezer', 'local'):
        assert shown in text, shown
    ui.open(f'{flows.PANELS["backups"]}restore/{backup_ids[1]}',
            'restore dialog')

    ui.open(flows.PANELS['backups'], 'backups')
    first_row = ui.find_all('table.datatable tbody tr')[0].text
    flows.row_action(ui, 'backups', first_row.split('\n')[0],
                     'Delete Backup', confirm=True)
    assert len(api.ids('backups')) == 1
    assert len(ui.table_rows()) == 1
    assert server_logs.api_refusals() == []


def one_of_each(api):
    """A client, an action, a job in a session and the job's backup, made
    through the API; their ids in that order."""
    client_id = register_client(api)
    action_id = api_action(api, 'etc')
    job_id = api_job(api, client_id, 'etc daily')
    session_id = api.request('POST', '/sessions/', expect=201, json={
        'description': 'nightly', 'schedule': {}}).json()['session_id']
    api.request('PUT', f'/sessions/{session_id}/jobs/{job_id}',
                expect=204)
    backup_id = post_backup(api, agent_backup(CLIENT_HOST, job_id,
                                              1_780_000_000))
    return client_id, action_id, job_id, session_id, backup_id


# -- isolation -------------------------------------------------------------

def test_another_project_sees_none_of_it(account, new_account, dashboard,
                                         service, server_logs):
    api = service(account)
    client_id, action_id, job_id, session_id, backup_id = one_of_each(api)

    other = new_account('other')
    ui = dashboard(other)
    for panel, path in flows.PANELS.items():
        ui.open(path, panel)
        assert ui.table_rows() == [], panel
        assert 'No items to display' in ui.body_text(), panel
    server_logs.check()
    # Straight to the first project's documents: Horizon says it cannot
    # find them and goes back to the list; no server error, nothing shown.
    for what, path in (
            ('job', f'{flows.PANELS["jobs"]}{job_id}'),
            ('action', f'{flows.PANELS["actions"]}action/{action_id}'),
            ('session', f'{flows.PANELS["sessions"]}{session_id}'),
            ('client', f'{flows.PANELS["clients"]}{client_id}'),
            ('backup', f'{flows.PANELS["backups"]}{backup_id}')):
        ui.open_refused(path, what)
        text = ui.body_text()
        for secret in ('etc daily', 'nightly', CLIENT_HOST, '/etc'):
            assert secret not in text, (what, secret)
    # The API answered 404, nothing worse; python-freezerclient returns
    # None for a 404 and the plugin's views trip over it inside their
    # error guard (logged with a traceback, shown as "Unable to get ...").
    refusals = server_logs.api_refusals()
    assert refusals and {(method, status) for method, _, status in
                         refusals} == {('GET', 404)}, refusals
    server_logs.check_api()
    server_logs.mark()
    # and the first project still has it all
    assert api.ids('jobs') == [job_id]
    assert api.ids('backups') == [backup_id]


# -- every page ------------------------------------------------------------

def test_every_page_of_the_plugin_loads(account, dashboard, service,
                                        server_logs):
    api = service(account)
    client_id, action_id, job_id, session_id, backup_id = one_of_each(api)
    ui = dashboard(account)

    jobs, sessions = flows.PANELS['jobs'], flows.PANELS['sessions']
    actions, backups = flows.PANELS['actions'], flows.PANELS['backups']
    pages = [
        *flows.PANELS.values(),
        f'{flows.PANELS["clients"]}{client_id}',
        f'{actions}create/', f'{actions}create/{action_id}',
        f'{actions}action/{action_id}',
        f'{backups}{backup_id}', f'{backups}restore/{backup_id}',
        f'{jobs}{job_id}', f'{jobs}create/', f'{jobs}configure/{job_id}',
        f'{jobs}edit/{job_id}', f'{jobs}edit_actions/{job_id}',
        f'{sessions}{session_id}', f'{sessions}create/',
        f'{sessions}edit/{session_id}',
        f'{sessions}{session_id}/attach_job/',
        f'{sessions}{session_id}/manage_jobs/',
        f'{sessions}attach_to_session/{job_id}',
    ]
    for page in pages:
        ui.open(page)
    # the plugin's JSON views, which its scripts call
    for path, shown in (('/project/freezer-api/clients/', client_id),
                        ('/project/freezer-api/actions/', action_id),
                        (f'/project/freezer-api/actions/job/{job_id}',
                         'etc')):
        status, body = ui.ajax(path)
        assert status == 200, (path, status, body[:500])
        assert shown in body, (path, body[:500])
    assert server_logs.api_refusals() == []
