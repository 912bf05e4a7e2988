"""The soak's check itself (``workload.check``), on stores made up here:
what it lets through on Elasticsearch only, and what it still catches."""

import pytest

from tests.reliability import workload

JOB = 'j' * 32
SESSION = 's' * 32


class StoreAnswers:
    """A transport that answers GETs from a dict of path -> JSON."""

    def __init__(self, answers):
        self.answers = answers

    def call(self, method, path, body=None):
        assert method == 'GET', (method, path)
        return Answer(self.answers[path.split('?')[0].rstrip('/')])


class Answer:
    status_code = 200

    def __init__(self, body):
        self.body = body

    def json(self):
        return self.body


def store(entry, session_tag):
    job = {'job_id': JOB, 'description': 'patch-3', 'session_id': SESSION,
           'job_schedule': {'current_pid': 3}, '_version': 11}
    return StoreAnswers({
        '/backups': {'backups': []},
        '/clients': {'clients': [{'client': {'client_id': 'c'}}]},
        '/jobs': {'jobs': [job]},
        f'/jobs/{JOB}': job,
        f'/sessions/{SESSION}': {
            'session_tag': session_tag, 'status': 'running', 'result': '',
            'jobs': {JOB: entry}},
    })


def log_of(last, run_tags):
    log = workload.Log()
    log.patches[JOB] = [(3, True)]
    log.job_writes[JOB] = 1
    log.member[JOB] = SESSION
    log.entries[(SESSION, JOB)] = last
    log.run_tags[SESSION] = set(run_tags)
    return log


def check(transport, log, on_elasticsearch):
    return workload.check(transport, log, [SESSION],
                          [(0, 'c', JOB, SESSION)], {JOB: 10},
                          extra_versions_allowed=on_elasticsearch)


RUNNING_6 = {'status': 'running', 'result': '', 'session_tag': 6}


def unacknowledged_start_after_end_5():
    """The store shows a run 6 opened by a start answered out-of-sync
    after the end of run 5 was acknowledged (the Elasticsearch case of
    doc/reliability.rst, "Open issues")."""
    log = log_of(('end', 5, 'success'), range(1, 6))
    log.unacked_starts[(SESSION, JOB)] = 5
    log.unacked_tags[SESSION].add(6)
    return log


def test_a_start_answered_otherwise_is_counted_on_elasticsearch():
    checked = check(store(RUNNING_6, 6), unacknowledged_start_after_end_5(),
                    on_elasticsearch=True)
    assert checked['starts kept unacknowledged'] == 1
    assert checked['runs opened unacknowledged'] == 1


def test_a_start_answered_otherwise_fails_on_other_stores():
    with pytest.raises(AssertionError):
        check(store(RUNNING_6, 6), unacknowledged_start_after_end_5(),
              on_elasticsearch=False)


def test_a_lost_end_still_fails_on_elasticsearch():
    # run 6's end was acknowledged, the store still shows the job running
    log = log_of(('end', 6, 'success'), range(1, 7))
    with pytest.raises(AssertionError, match="'end', 6, 'success'"):
        check(store(RUNNING_6, 6), log, on_elasticsearch=True)


def test_a_lost_end_after_a_refused_start_still_fails():
    # end of run 5 acknowledged, then a start refused: the store showing
    # the job still running in run 5 is the end lost, not the start kept
    log = log_of(('end', 5, 'success'), range(1, 6))
    log.unacked_starts[(SESSION, JOB)] = 5
    running_5 = dict(RUNNING_6, session_tag=5)
    with pytest.raises(AssertionError, match="'end', 5, 'success'"):
        check(store(running_5, 5), log, on_elasticsearch=True)


def test_a_run_tag_no_start_could_have_opened_fails_on_elasticsearch():
    log = unacknowledged_start_after_end_5()
    log.unacked_tags[SESSION] = {9}
    with pytest.raises(AssertionError):
        check(store(RUNNING_6, 6), log, on_elasticsearch=True)


def test_a_run_tag_beyond_the_session_fails_on_elasticsearch():
    # a tag handed out that the store does not show: a lost start, even
    # where refused starts explain the tags missing
    log = unacknowledged_start_after_end_5()
    log.run_tags[SESSION].add(7)
    with pytest.raises(AssertionError):
        check(store(RUNNING_6, 6), log, on_elasticsearch=True)
