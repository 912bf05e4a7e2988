"""Regressions found while documenting the API (OpenAPI review)."""

from tests.api.helpers import Api
from tests.api.helpers import assert_error


def test_home_documents_and_health_answer_their_own_media_types(client):
    resp = client.simulate_get('/v2', headers={
        'Accept': 'application/json-home', 'X-Project-Id': 'proj-a'})
    assert resp.status_code == 200
    assert resp.headers['content-type'].startswith('application/json-home')
    resp = client.simulate_get('/healthcheck',
                               headers={'Accept': 'text/plain'})
    assert resp.status_code == 200 and resp.text == 'OK'
    # what a resource does not serve is still refused
    assert_error(client.simulate_get('/v2/proj-a/jobs', headers={
        'Accept': 'text/plain', 'X-Project-Id': 'proj-a'}), 406)
    assert_error(client.simulate_get('/healthcheck',
                                     headers={'Accept': 'image/png'}), 406)


def test_an_unknown_session_action_allows_post_only(client):
    api = Api(client, 'v2')
    resp = api.post('sessions', json={'schedule': {}})
    assert resp.status_code == 201
    resp = api.post('sessions', resp.json['session_id'], 'action',
                    json={'stop': {'job_id': 'x', 'current_tag': 0}})
    assert_error(resp, 405)
    assert resp.headers['Allow'] == 'POST'


def test_whole_numbers_are_integers_however_they_are_written(client):
    api = Api(client, 'v2')
    resp = api.post('sessions', json={'schedule': {}, 'session_tag': 2.0,
                                      'hold_off': 3e1})
    assert resp.status_code == 201, resp.text
    session = api.doc('sessions', resp.json['session_id'])
    assert session['session_tag'] == 2 and isinstance(
        session['session_tag'], int)
    assert session['hold_off'] == 30 and isinstance(session['hold_off'],
                                                    int)
    # a real fraction is still refused where an integer is required
    assert_error(api.post('sessions', json={'schedule': {},
                                            'session_tag': 2.5}), 400)


def test_agent_metadata_with_empty_strings_for_unset_options(client):
    # freezer-agent 19.0.0 posts "max_level": "" when no max level is set
    api = Api(client, 'v2')
    resp = api.post('backups', json={
        'container': '/tmp/store', 'backup_name': 'b', 'hostname': 'h',
        'max_level': '', 'always_level': '', 'encrypted': '',
        'mode': '', 'level': 0})
    assert resp.status_code == 201, resp.text
    meta = api.doc('backups', resp.json['backup_id'])['backup_metadata']
    assert meta['max_level'] is None and meta['encrypted'] is None
    assert meta['always_level'] == '' and meta['mode'] == ''
    assert meta['level'] == 0
    # a wrong type is still refused
    assert_error(api.post('backups', json={
        'container': 'c', 'backup_name': 'b', 'hostname': 'h',
        'max_level': 'five'}), 400)
