"""The job document rules: one assembly for create and replace, one way
to take a job out of a session's job list (spec §2.3, D10)."""

from freezer_api.core import jobs

BODY = {'client_id': 'h', 'job_actions': [],
        'job_schedule': {'time_created': 5, 'status': 'scheduled'},
        'session_tag': 3}


def test_job_document_sets_the_server_fields_and_defaults():
    doc = jobs.job_document({'client_id': 'h', 'job_schedule': {}},
                            'j1', 'u', 'p')
    assert doc == {'description': '', 'session_tag': 0, 'client_id': 'h',
                   'job_schedule': {}, 'job_id': 'j1', 'session_id': '',
                   'user_id': 'u', 'project_id': 'p'}


def test_job_document_keeps_the_session_link_it_is_given():
    doc = jobs.job_document({'client_id': 'h', 'job_schedule': {}},
                            'j1', 'u', 'p', session_id='s1', session_tag=7)
    assert (doc['session_id'], doc['session_tag']) == ('s1', 7)
    # the scheduler reports the tag it adopted: the body's tag wins
    doc = jobs.job_document(BODY, 'j1', 'u', 'p', session_id='s1',
                            session_tag=7)
    assert (doc['session_id'], doc['session_tag']) == ('s1', 3)


def test_job_document_copies_the_body():
    doc = jobs.job_document(BODY, 'j1', 'u', 'p')
    doc['job_schedule']['status'] = 'changed'
    assert BODY['job_schedule']['status'] == 'scheduled'


def test_create_forces_the_run_times():
    doc = jobs.start_schedule(jobs.job_document(BODY, 'j1', 'u', 'p'),
                              100, keep_given=False)
    assert doc['job_schedule'] == {'time_created': 100, 'time_started': -1,
                                   'time_ended': -1, 'status': 'scheduled'}


def test_replace_of_an_absent_job_keeps_the_times_the_client_sends():
    # Decision (spec §2.3: only create forces the times; a replace stores
    # the body, the server setting only id and owner, as upstream does).
    doc = jobs.start_schedule(jobs.job_document(BODY, 'j1', 'u', 'p'),
                              100, keep_given=True)
    assert doc['job_schedule'] == {'time_created': 5, 'time_started': -1,
                                   'time_ended': -1, 'status': 'scheduled'}


def test_session_without_job():
    session = {'status': 'active', 'jobs': {'a': {'x': 1}, 'b': {'x': 2}}}
    assert jobs.session_without_job(session, 'a') == {
        'status': 'active', 'jobs': {'b': {'x': 2}}}
    assert session['jobs'] == {'a': {'x': 1}, 'b': {'x': 2}}
    assert jobs.session_without_job(session, 'zzz') is None
    assert jobs.session_without_job({}, 'a') is None
    assert jobs.session_without_job({'jobs': None}, 'a') is None
