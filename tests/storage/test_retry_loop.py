"""``StorageDriver.run_atomic``: which lost races it runs again, and for
how long (issue 17: a change that loses to other writers' commits is
bounded by time, never by the count of attempts)."""

import pytest

from freezer_api.storage import base
from freezer_api.storage import errors


class ScriptedDriver(base.StorageDriver):
    """A driver whose attempts raise what ``script`` says, in order, then
    return 'done'."""

    max_attempts = 3

    def __init__(self, script, **attributes):
        super().__init__(conf=None)
        self.script = list(script)
        self.attempts = []
        for name, value in attributes.items():
            setattr(self, name, value)

    def attempt(self, change, attempt):
        self.attempts.append(attempt)
        if self.script:
            raise self.script.pop(0)
        return change(None)

    def get(self, kind, doc_id, scope):
        raise NotImplementedError

    def list(self, kind, scope, query, limit, offset):
        raise NotImplementedError

    def ping(self):
        pass

    def upgrade_schema(self, kinds=None):
        pass

    def drop_schema(self):
        pass

    def describe_schema(self, kinds=None):
        return {}


@pytest.fixture
def sleeps(monkeypatch):
    slept = []
    monkeypatch.setattr(base, 'backoff', lambda *args: slept.append(args))
    return slept


def test_contended_changes_outlast_the_count_of_attempts(sleeps):
    driver = ScriptedDriver([base.Contended(f'doc-{n}') for n in range(20)])
    assert driver.atomic(lambda txn: 'done') == 'done'
    assert len(driver.attempts) == 21
    first, second, last = driver.attempts[0], driver.attempts[1], \
        driver.attempts[-1]
    assert (first.lost_on, first.deadline) == (None, None)
    assert second.lost_on == 'doc-0' and second.contended
    assert last.lost_on == 'doc-19'
    assert second.deadline is not None and last.deadline == second.deadline
    assert len(sleeps) == 20


def test_contended_changes_stop_at_the_contention_timeout(sleeps):
    driver = ScriptedDriver([base.Contended('doc')] * 5,
                            contention_timeout=0)
    with pytest.raises(errors.Conflict, match='kept conflicting'):
        driver.atomic(lambda txn: 'done')
    assert len(driver.attempts) == 1


def test_other_lost_races_are_counted(sleeps):
    # a stale read is not contention: max_attempts of them, as before,
    # whatever contention came in between
    script = [base.LostRace(), base.Contended('doc'), base.LostRace(),
              base.Contended('doc'), base.LostRace(), base.LostRace()]
    driver = ScriptedDriver(script)
    with pytest.raises(errors.Conflict):
        driver.atomic(lambda txn: 'done')
    assert len(driver.attempts) == 5
    assert [a.lost_on for a in driver.attempts] == [
        None, None, 'doc', None, 'doc']


def test_an_engine_that_waits_in_turn_is_not_also_backed_off(sleeps):
    driver = ScriptedDriver([base.Contended('doc'), base.LostRace()],
                            waits_in_turn=True)
    assert driver.atomic(lambda txn: 'done') == 'done'
    assert len(driver.attempts) == 3
    assert len(sleeps) == 1  # after the plain lost race only


def test_backoff_of_a_long_contention_stays_a_number(monkeypatch):
    waited = []
    monkeypatch.setattr(base.time, 'sleep', waited.append)
    base.backoff(5000, 0.01, 0.25)
    assert 0 <= waited[0] <= 0.25
