"""The session state machine as pure functions (spec §3.1, D9)."""

import pytest

from freezer_api.core import sessions
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import UnknownAction

NOW = 1_000_000


def session(tag=0, time_start=-1, hold_off=30, jobs=('a', 'b'), **extra):
    return {'session_tag': tag, 'time_start': time_start,
            'hold_off': hold_off, 'status': 'active', 'result': '',
            'jobs': {j: {'client_id': f'c{j}', 'status': '', 'result': ''}
                     for j in jobs}, **extra}


def test_first_start_opens_run_and_bumps_tag():
    doc, result, tag = sessions.start(session(), 'a', 0, NOW)
    assert (result, tag) == ('success', 1)
    assert doc['session_tag'] == 1 and doc['time_start'] == NOW
    assert doc['status'] == 'running' and doc['result'] == ''
    assert doc['jobs']['a']['status'] == 'running'
    assert doc['jobs']['a']['session_tag'] == 1
    assert doc['last_start'] == '1970-01-12T13:46:40Z'


def test_late_joiner_with_old_tag_joins_within_hold_off():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    joined, result, tag = sessions.start(doc, 'b', 0, NOW + 30)
    assert (result, tag) == ('success', 1)
    assert joined['jobs']['b']['session_tag'] == 1
    assert joined['session_tag'] == 1


def test_same_tag_within_hold_off_is_hold_off_and_changes_nothing():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    assert sessions.start(doc, 'b', 1, NOW + 5) == (None, 'hold-off', 1)


def test_old_tag_after_hold_off_is_out_of_sync():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    assert sessions.start(doc, 'b', 0, NOW + 31) == (None, 'out-of-sync', 1)


def test_current_tag_after_hold_off_opens_next_run():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    doc, result, tag = sessions.start(doc, 'b', 1, NOW + 31)
    assert (result, tag) == ('success', 2)


def test_tag_too_high_is_rejected():
    with pytest.raises(InvalidInput, match='too high'):
        sessions.start(session(tag=3), 'a', 4, NOW)


def test_job_not_in_session_is_rejected():
    with pytest.raises(InvalidInput, match='not found in session'):
        sessions.start(session(), 'zzz', 0, NOW)
    with pytest.raises(InvalidInput, match='not found in session'):
        sessions.end(session(), 'zzz', 0, 'success', NOW)


def test_end_with_other_tag_is_out_of_sync():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    assert sessions.end(doc, 'a', 0, 'success', NOW + 1) == (
        None, 'out-of-sync', 1)


@pytest.mark.parametrize('result', ['', 'ok', None, 3])
def test_end_result_is_validated(result):
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    with pytest.raises(InvalidInput, match='result must be'):
        sessions.end(doc, 'a', 1, result, NOW)


def test_run_succeeds_when_every_member_succeeded():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    doc, _, _ = sessions.start(doc, 'b', 0, NOW + 1)
    doc, result, _ = sessions.end(doc, 'a', 1, 'success', NOW + 2)
    assert result == 'success' and doc['status'] == 'running'
    doc, _, _ = sessions.end(doc, 'b', 1, 'success', NOW + 3)
    assert doc['status'] == 'completed' and doc['result'] == 'success'
    assert doc['time_end'] == NOW + 3


def test_early_finisher_waits_for_late_joiners_within_hold_off():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    doc, _, _ = sessions.end(doc, 'a', 1, 'success', NOW + 2)
    assert doc['status'] == 'running'


def test_absent_member_does_not_block_success_after_hold_off():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    doc, _, _ = sessions.end(doc, 'a', 1, 'success', NOW + 100)
    assert (doc['status'], doc['result']) == ('completed', 'success')


@pytest.mark.parametrize('bad', ['fail', 'aborted'])
def test_any_failure_completes_the_run_as_fail(bad):
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    doc, _, _ = sessions.start(doc, 'b', 0, NOW + 1)
    doc, _, _ = sessions.end(doc, 'a', 1, bad, NOW + 2)
    assert (doc['status'], doc['result']) == ('completed', 'fail')
    doc, _, _ = sessions.end(doc, 'b', 1, 'success', NOW + 3)
    assert (doc['status'], doc['result']) == ('completed', 'fail')


def test_a_late_joiner_reopens_a_completed_run_and_its_end_counts():
    """Found by the soak: the run completed (every member that took part
    succeeded), a node with the old tag joined within the hold-off, ended
    with "fail", and the session stayed "success"."""
    doc, _, _ = sessions.start(session(hold_off=30), 'a', 0, NOW)
    doc, _, _ = sessions.end(doc, 'a', 1, 'success', NOW + 1)
    doc, _, _ = sessions.start(doc, 'b', 0, NOW + 2)
    doc, _, _ = sessions.end(doc, 'b', 1, 'success', NOW + 3)
    assert (doc['status'], doc['result']) == ('completed', 'success')
    # a again, still holding tag 0, within the hold-off: joins run 1
    doc, result, tag = sessions.start(doc, 'a', 0, NOW + 4)
    assert (result, tag) == ('success', 1)
    assert (doc['status'], doc['result'], doc['time_end']) == (
        'running', '', -1)
    doc, _, _ = sessions.end(doc, 'a', 1, 'fail', NOW + 5)
    assert (doc['status'], doc['result'], doc['time_end']) == (
        'completed', 'fail', NOW + 5)


def test_a_late_joiner_does_not_reopen_a_failed_run():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    doc, _, _ = sessions.end(doc, 'a', 1, 'fail', NOW + 1)
    doc, _, _ = sessions.start(doc, 'b', 0, NOW + 2)
    assert (doc['status'], doc['result']) == ('completed', 'fail')


def test_an_end_reported_again_with_another_result_is_counted():
    doc, _, _ = sessions.start(session(jobs=('a',)), 'a', 0, NOW)
    doc, _, _ = sessions.end(doc, 'a', 1, 'success', NOW + 1)
    assert (doc['status'], doc['result']) == ('completed', 'success')
    doc, _, _ = sessions.end(doc, 'a', 1, 'aborted', NOW + 2)
    assert (doc['status'], doc['result']) == ('completed', 'fail')


def test_entries_of_previous_runs_do_not_count():
    doc, _, _ = sessions.start(session(), 'a', 0, NOW)
    doc, _, _ = sessions.start(doc, 'b', 0, NOW + 1)
    doc, _, _ = sessions.end(doc, 'a', 1, 'success', NOW + 2)
    doc, _, _ = sessions.end(doc, 'b', 1, 'fail', NOW + 3)
    # next run: b's old "fail" must not fail the new run
    doc, _, _ = sessions.start(doc, 'a', 1, NOW + 1000)
    doc, _, _ = sessions.start(doc, 'b', 1, NOW + 1001)
    assert doc['status'] == 'running' and doc['result'] == ''
    doc, _, _ = sessions.end(doc, 'a', 2, 'success', NOW + 1002)
    assert doc['status'] == 'running'
    doc, _, _ = sessions.end(doc, 'b', 2, 'success', NOW + 1003)
    assert (doc['status'], doc['result']) == ('completed', 'success')


@pytest.mark.parametrize('body, message', [
    (None, 'Bad action request format'),
    ([], 'Bad action request format'),
    ({}, 'Bad action request format'),
    ({'start': None}, 'Bad action request format'),
    ({'start': {}}, 'Bad action request format'),
    ({'start': {'current_tag': 1}}, 'job_id is required'),
    ({'start': {'job_id': 'a'}}, 'current_tag is required'),
    ({'start': {'job_id': 'a', 'current_tag': 'x'}}, 'integer'),
    ({'start': {'job_id': 'a', 'current_tag': True}}, 'integer'),
    ({'start': {'job_id': 'a', 'current_tag': -1}}, 'integer'),
    ({'start': {'job_id': 'a', 'current_tag': 1.5}}, 'integer'),
])
def test_parse_action_rejects_malformed_requests(body, message):
    with pytest.raises(InvalidInput, match=message):
        sessions.parse_action(body)


def test_parse_action_accepts_string_tags_and_rejects_unknown_actions():
    assert sessions.parse_action(
        {'start': {'job_id': 'a', 'current_tag': '7'}})[:3] == (
        'start', 'a', 7)
    with pytest.raises(UnknownAction):
        sessions.parse_action({'stop': {'job_id': 'a', 'current_tag': 1}})


@pytest.mark.parametrize('hold_off', [0, -1, -3600])
def test_hold_off_of_zero_or_less_means_no_window(hold_off):
    # upstream accepted any integer; without a window every start with
    # the current tag opens a new run and an older tag is out of sync
    doc, result, tag = sessions.start(session(hold_off=hold_off), 'a', 0,
                                      NOW)
    assert (result, tag) == ('success', 1)
    assert sessions.start(doc, 'b', 0, NOW) == (None, 'out-of-sync', 1)
    doc, result, tag = sessions.start(doc, 'b', 1, NOW)
    assert (result, tag) == ('success', 2)


@pytest.mark.parametrize('hold_off', [0, -5])
def test_run_without_window_succeeds_once_its_jobs_did(hold_off):
    doc, _, _ = sessions.start(session(hold_off=hold_off), 'a', 0, NOW)
    doc, result, _ = sessions.end(doc, 'a', 1, 'success', NOW)
    # b never joined, and no window waits for it
    assert (doc['status'], doc['result']) == ('completed', 'success')


def test_shown_with_upstreams_defaults():
    stored = {'session_id': 's', 'schedule': {}, 'session_tag': 0,
              'jobs': {'j': {'client_id': 'c', 'status': 'running'}}}
    shown = sessions.with_defaults(stored)
    assert shown['time_started'] == shown['time_ended'] == -1
    assert shown['time_start'] == shown['time_end'] == -1
    assert shown['jobs']['j'] == {'client_id': 'c', 'status': 'running',
                                  'result': '', 'time_started': -1,
                                  'time_ended': -1}
    assert stored['jobs']['j'] == {'client_id': 'c', 'status': 'running'}
    complete = {**sessions.NEW_SESSION_STATE, 'jobs': {}}
    assert sessions.with_defaults(complete) is complete


def test_session_document_sets_server_fields_and_fresh_state():
    body = {'schedule': {}, 'status': 'running', 'jobs': {'x': {}}}
    doc = sessions.session_document(body, 's1', 'u', 'p')
    assert doc['jobs'] == {} and doc['session_id'] == 's1'
    assert (doc['user_id'], doc['project_id']) == ('u', 'p')
    assert doc['status'] == 'running'  # the body's own state is kept
    kept = sessions.session_document(body, 's1', 'u', 'p',
                                     jobs={'j': {'status': ''}})
    assert kept['jobs'] == {'j': {'status': ''}}
