"""What freezer-web-ui 19.0.0 sends (found by tests/dashboard).

The plugin builds a job from the actions it read back: each job action is
the action document as GET returned it (with ``_version``), passed
through its ``_sanitize_action``, which sets ``action``, ``mode``,
``storage``, ``engine``, ``engine_name`` and ``backup_name`` of the
``freezer_action`` to null when the action lacks them. Null means "not
set" there, as it does for ``action_defaults`` (spec D11): the job is
accepted, and its actions stay the same action document.
"""

import pytest

from tests.api import helpers
from tests.api.helpers import assert_error

UI_NULLED = ('action', 'mode', 'storage', 'engine', 'engine_name',
             'backup_name')


def as_the_web_ui_reads(action):
    """freezer_ui.api.api._sanitize_action, on a GET answer."""
    entry = dict(action)
    entry.setdefault('action_id', '')
    entry['freezer_action'] = dict(entry.get('freezer_action') or {})
    for key in UI_NULLED:
        entry['freezer_action'].setdefault(key, None)
    return entry


@pytest.fixture
def client_id(api):
    return helpers.register_client(
        api, 'node1', supported_engines=['tar'], supported_storages=['local'])


def test_job_from_actions_as_the_web_ui_reads_them(api, client_id):
    action_id = helpers.make_action(api, freezer_action={
        'action': 'backup', 'mode': 'fs', 'backup_name': 'etc',
        'path_to_backup': '/etc', 'container': '/backups',
        'engine_name': 'tar'})
    action = api.doc('actions', action_id)
    entry = as_the_web_ui_reads(action)
    assert entry['freezer_action']['engine'] is None
    assert entry['freezer_action']['storage'] is None

    job_id = helpers.create(api, 'jobs', helpers.job_body(
        client_id, actions=[entry]))

    job_action = api.doc('jobs', job_id)['job_actions'][0]
    # the same action, not a copy of it
    assert job_action['action_id'] == action_id
    assert api.ids('actions') == [action_id]
    assert api.doc('actions', action_id) == action
    assert job_action['freezer_action']['path_to_backup'] == '/etc'


def test_null_freezer_action_fields_are_not_set(api, client_id):
    nulled = dict.fromkeys(('storage', 'engine', 'container',
                            'restore_abs_path', 'src_file'))
    action_id = helpers.make_action(
        api, freezer_action=helpers.freezer_action(**nulled))
    assert api.doc('actions', action_id)['freezer_action']['engine'] is None
    # and not taken for a capability the client lacks
    helpers.create(api, 'jobs', helpers.job_body(client_id, actions=[
        {'freezer_action': helpers.freezer_action(**nulled)}]))


@pytest.mark.parametrize('field,value', [
    ('engine', 5), ('storage', ['local']), ('action', 'not an id!'),
    ('mode', {}), ('backup_name', 1)])
def test_freezer_action_fields_still_typed(api, client_id, field, value):
    before = helpers.snapshot(api)
    resp = api.post('jobs', json=helpers.job_body(client_id, actions=[
        {'freezer_action': helpers.freezer_action(**{field: value})}]))
    assert_error(resp, 400)
    resp = api.post('actions', json=helpers.action_body(
        freezer_action=helpers.freezer_action(**{field: value})))
    assert_error(resp, 400)
    assert helpers.snapshot(api) == before


def test_unsupported_engine_still_refused(api, client_id):
    resp = api.post('jobs', json=helpers.job_body(client_id, actions=[
        {'freezer_action': helpers.freezer_action(engine='rsync',
                                                  storage='local')}]))
    assert_error(resp, 422)
