"""What an operator does in the freezer-web-ui panels, step by step.

Each function clicks through one page or dialog of the plugin the way a
person does (buttons, tabs, the clients picker, dragging actions) and
leaves the browser on the page Horizon shows afterwards, checked by
``Dashboard.check_page``.
"""

PANELS = {
    'actions': '/project/freezer-actions/',
    'backups': '/project/freezer-backups/',
    'clients': '/project/freezer-clients/',
    'jobs': '/project/freezer-jobs/',
    'sessions': '/project/freezer-sessions/',
}


def create_action(ui, name, fields, rules=None, advanced=None):
    """The Actions panel's Create Action dialog (its four tabs)."""
    ui.open(PANELS['actions'], 'actions')
    ui.button('Create Action').click()
    ui.modal('create action')
    ui.fill('id_backup_name', name)
    for field, value in fields.items():
        ui.fill(f'id_{field}', value)
    for tab, values in (('Rules', rules), ('Advanced', advanced)):
        if values:
            ui.tab(tab)
            for field, value in values.items():
                ui.fill(f'id_{field}', value)
    ui.submit_modal('create action')
    ui.check_page('actions after create')


def fill_schedule(ui, start=None, unit=None, value=None, end=None):
    if start:
        ui.fill('id_schedule_start_date', start)
    if unit:
        # NOTE: the job dialog's field is named interval_uint (sic), the
        # session dialog's interval_unit
        ui.fill('id_interval_uint' if ui.find_all('#id_interval_uint')
                else 'id_interval_unit', unit)
    if value is not None:
        ui.visible('#id_interval_value')
        ui.fill('id_interval_value', value)
    if end:
        ui.fill('id_schedule_end_date', end)


def pick_member(ui, step, text, remove=False):
    """Move the entry showing ``text`` across Horizon's membership
    widget of workflow step ``step`` with its "+" (or "-") button."""
    where = f'{step}_members' if remove else f'available_{step}'
    for entry in ui.find_all(f'.modal.in .{where} > *'):
        if text in entry.text:
            ui.find('a.btn', entry).click()
            return
    ui.screenshot(f'no {text} in {where}')
    raise AssertionError(f'the dialog offers no {text!r} in {where}')


def create_job(ui, name, hostnames, action_ids, schedule):
    """The Jobs panel's Create Job workflow: info and schedule, clients
    picked with their "+" buttons, actions dragged in order."""
    ui.open(PANELS['jobs'], 'jobs')
    ui.button('Create Job').click()
    ui.modal('create job')
    ui.fill('id_description', name)
    fill_schedule(ui, **schedule)
    ui.tab('Clients')
    for hostname in hostnames:
        pick_member(ui, 'selected_clients', hostname)
    ui.screenshot('clients picked')
    ui.tab('Actions')
    for action_id in action_ids:
        ui.drag(ui.find(f'#actions_available li[id="{action_id}"]'),
                ui.find('#actions_selected'))
    picked = [li.get_attribute('id') for li in
              ui.find_all('#actions_selected li[id]')]
    if picked != list(action_ids):
        ui.screenshot('actions not picked')
        raise AssertionError(f'dragged {action_ids}, the dialog holds '
                             f'{picked}')
    ui.submit_modal('create job')
    ui.check_page('jobs after create')


def edit_job(ui, name, new_name, start, interval, end):
    """The Edit Job dialog of the job row showing ``name``."""
    ui.open(PANELS['jobs'], 'jobs')
    ui.row_action(name, 'Edit Job')
    ui.modal('edit job')
    ui.fill('id_description', new_name)
    ui.fill('id_schedule_start_date', start)
    ui.fill('id_schedule_interval', interval)
    ui.fill('id_schedule_end_date', end)
    ui.submit_modal('edit job')
    ui.check_page('jobs after edit')


def row_action(ui, panel, text, label, confirm=False):
    """Run ``label`` on the row of ``panel`` showing ``text`` (confirming
    it when Horizon asks)."""
    ui.open(PANELS[panel], panel)
    ui.row_action(text, label)
    if confirm:
        ui.confirm()
    ui.check_page(f'{panel} after {label}')


def job_row_action(ui, name, label, confirm=False):
    row_action(ui, 'jobs', name, label, confirm)


def session_row_action(ui, name, label, confirm=False):
    row_action(ui, 'sessions', name, label, confirm)


def edit_action(ui, name, fields):
    """The Edit dialog of the action row showing ``name``."""
    ui.open(PANELS['actions'], 'actions')
    ui.row_action(name, 'Edit')
    ui.modal('edit action')
    for field, value in fields.items():
        ui.fill(f'id_{field}', value)
    ui.submit_modal('edit action')
    ui.check_page('actions after edit')


def edit_job_actions(ui, name, add=()):
    """The Edit Actions dialog of the job row showing ``name``: drag the
    actions ``add`` (ids) after the job's own."""
    ui.open(PANELS['jobs'], 'jobs')
    ui.row_action(name, 'Edit Actions')
    ui.modal('edit job actions')
    before = [li.get_attribute('id') for li in
              ui.find_all('#actions_selected li[id]')]
    for action_id in add:
        ui.drag(ui.find(f'#actions_available li[id="{action_id}"]'),
                ui.find('#actions_selected li[id]:last-child'))
    picked = [li.get_attribute('id') for li in
              ui.find_all('#actions_selected li[id]')]
    if picked != before + list(add):
        ui.screenshot('actions not picked')
        raise AssertionError(f'dragged {add} after {before}, the dialog '
                             f'holds {picked}')
    ui.submit_modal('edit job actions')
    ui.check_page('jobs after edit actions')


def edit_session(ui, name, new_name, schedule):
    """The Edit Session dialog of the session row showing ``name``."""
    ui.open(PANELS['sessions'], 'sessions')
    ui.row_action(name, 'Edit Session')
    ui.modal('edit session')
    ui.fill('id_description', new_name)
    fill_schedule(ui, **schedule)
    ui.submit_modal('edit session')
    ui.check_page('sessions after edit')


def create_session(ui, name, schedule, jobs=()):
    """The Sessions panel's Create Session workflow, with ``jobs`` (job
    names) picked in its Jobs step."""
    ui.open(PANELS['sessions'], 'sessions')
    ui.button('Create Session').click()
    ui.modal('create session')
    ui.fill('id_description', name)
    fill_schedule(ui, **schedule)
    if jobs:
        ui.tab('Jobs')
        for job in jobs:
            pick_member(ui, 'selected_jobs', job)
    ui.submit_modal('create session')
    ui.check_page('sessions after create')


def manage_session_jobs(ui, session, remove=(), add=()):
    """The Manage Jobs dialog of the session row showing ``session``."""
    ui.open(PANELS['sessions'], 'sessions')
    ui.row_action(session, 'Manage Jobs')
    ui.modal('manage jobs')
    for job in remove:
        pick_member(ui, 'selected_jobs', job, remove=True)
    for job in add:
        pick_member(ui, 'selected_jobs', job)
    ui.submit_modal('manage jobs')
    ui.check_page('sessions after manage jobs')
