"""The grouping of refreshes of the Elasticsearch driver
(storage.elasticsearch.refreshes), without a server, so in the fast tier
(the file's name leaves the engine out for that reason). The refresh is a
function of the test that can be held open, so the orders that matter are
made, not hoped for. The real refreshes are covered by the read-your-writes
tests of test_elasticsearch.py."""

import threading

import pytest

from freezer_api.storage import errors
from freezer_api.storage.elasticsearch import refreshes

TIMEOUT = 10


class HeldRefresh:
    """A refresh that runs until the test lets it finish."""

    def __init__(self):
        self.begun = []           # one Event per refresh, set to finish it
        self.started = threading.Semaphore(0)
        self.fail = set()         # numbers (1-based) of refreshes to fail

    def __call__(self):
        finish = threading.Event()
        self.begun.append(finish)
        number = len(self.begun)
        self.started.release()
        assert finish.wait(TIMEOUT)
        if number in self.fail:
            raise errors.Unavailable('refresh failed')

    def wait_started(self, count):
        while len(self.begun) < count:
            assert self.started.acquire(timeout=TIMEOUT)


class Writer(threading.Thread):
    """A writer waiting for its refresh; ``error`` is what it raised."""

    def __init__(self, group):
        super().__init__(daemon=True)
        self.group = group
        self.error = None
        self.done = threading.Event()

    def run(self):
        try:
            self.group.wait()
        except Exception as exc:  # noqa: BLE001 (the test looks at it)
            self.error = exc
        self.done.set()


def writers(group, count):
    started = [Writer(group) for _ in range(count)]
    for writer in started:
        writer.start()
    return started


def test_a_writer_alone_refreshes_once():
    refresh = HeldRefresh()
    group = refreshes.RefreshGroup('true', refresh)
    writer, = writers(group, 1)
    refresh.wait_started(1)
    refresh.begun[0].set()
    assert writer.done.wait(TIMEOUT)
    assert writer.error is None
    assert len(refresh.begun) == 1


def test_a_writer_never_returns_on_a_refresh_begun_before_it_came():
    refresh = HeldRefresh()
    group = refreshes.RefreshGroup('true', refresh)
    first, = writers(group, 1)
    refresh.wait_started(1)
    # The second writer's writes were acknowledged while the first
    # refresh ran: that refresh may have missed them.
    second, = writers(group, 1)
    refresh.begun[0].set()
    assert first.done.wait(TIMEOUT)
    refresh.wait_started(2)
    assert not second.done.is_set()
    refresh.begun[1].set()
    assert second.done.wait(TIMEOUT)
    assert (first.error, second.error) == (None, None)


def test_writers_that_come_during_one_refresh_share_the_next():
    refresh = HeldRefresh()
    group = refreshes.RefreshGroup('true', refresh)
    first, = writers(group, 1)
    refresh.wait_started(1)
    waiting = writers(group, 6)
    refresh.begun[0].set()
    refresh.wait_started(2)
    refresh.begun[1].set()
    for writer in [first] + waiting:
        assert writer.done.wait(TIMEOUT)
        assert writer.error is None
    assert len(refresh.begun) == 2


def test_a_failed_refresh_fails_every_writer_waiting_for_it():
    refresh = HeldRefresh()
    refresh.fail = {2}
    group = refreshes.RefreshGroup('true', refresh)
    first, = writers(group, 1)
    refresh.wait_started(1)
    waiting = writers(group, 3)
    refresh.begun[0].set()
    refresh.wait_started(2)
    refresh.begun[1].set()
    assert first.done.wait(TIMEOUT)
    assert first.error is None
    for writer in waiting:
        assert writer.done.wait(TIMEOUT)
        assert isinstance(writer.error, errors.Unavailable)
    # and the next writer gets a refresh of its own, not that failure
    later, = writers(group, 1)
    refresh.wait_started(3)
    refresh.begun[2].set()
    assert later.done.wait(TIMEOUT)
    assert later.error is None


def test_a_writer_after_a_failure_is_not_failed_by_it():
    calls = []

    def refresh():
        calls.append(1)
        if len(calls) == 1:
            raise errors.Unavailable('down')

    group = refreshes.RefreshGroup('true', refresh)
    with pytest.raises(errors.Unavailable):
        group.wait()
    group.wait()
    assert len(calls) == 2
