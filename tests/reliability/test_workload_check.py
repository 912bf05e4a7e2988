"""The soak's check itself (``workload.check``), on stores made up here:
what it catches (the same on every engine)."""

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


def store(entry, session_tag, version=11):
    job = {'job_id': JOB, 'description': 'patch-3', 'session_id': SESSION,
           'job_schedule': {'current_pid': 3}, '_version': version}
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


def check(transport, log):
    return workload.check(transport, log, [SESSION],
                          [(0, 'c', JOB, SESSION)], {JOB: 10})


RUNNING_6 = {'status': 'running', 'result': '', 'session_tag': 6}


def test_a_start_kept_though_answered_otherwise_fails():
    # run 6 is open in the store, but the last acknowledged write was the
    # end of run 5 and no start of run 6 was acknowledged (a start answered
    # out-of-sync that was not undone: doc/reliability.rst)
    log = log_of(('end', 5, 'success'), range(1, 6))
    with pytest.raises(AssertionError):
        check(store(RUNNING_6, 6), log)


def test_a_lost_end_fails():
    # run 6's end was acknowledged, the store still shows the job running
    log = log_of(('end', 6, 'success'), range(1, 7))
    with pytest.raises(AssertionError, match="'end', 6, 'success'"):
        check(store(RUNNING_6, 6), log)


def test_a_run_tag_beyond_the_session_fails():
    # a tag handed out that the store does not show: a lost start
    log = log_of(('start', 6, None), range(1, 8))
    with pytest.raises(AssertionError):
        check(store(RUNNING_6, 6), log)


def test_the_acknowledged_state_passes():
    log = log_of(('start', 6, None), range(1, 7))
    checked = check(store(RUNNING_6, 6), log)
    assert checked


def test_an_extra_version_fails():
    # one write acknowledged on version 10: version 12 is a write that an
    # answer did not acknowledge (a change not undone whole)
    log = log_of(('start', 6, None), range(1, 7))
    with pytest.raises(AssertionError, match='extra write'):
        check(store(RUNNING_6, 6, version=12), log)
