"""The notifications' send cursor, with a stand-in for the bus: what a
stopped or killed process left unsent is sent by another, and two senders
over one store do not both send a range (the real bus:
test_notifications.py)."""

import threading
import time

import pytest

from freezer_api import notifications
from freezer_api.core import audit
from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
from tests.conftest import make_conf

P, Q = 'proj-a', 'proj-b'


class Bus:
    """Takes events while up, raises while down; shared by senders."""

    def __init__(self, delay=0.0):
        self.up = True
        self.delay = delay
        self.events = []
        self.lock = threading.Lock()

    def sender(self):
        def send(event_type, payload):
            if not self.up:
                raise ConnectionError('the bus is down')
            time.sleep(self.delay)  # a send takes a while
            with self.lock:
                self.events.append(payload['event_id'])
        return send


@pytest.fixture
def store(tmp_path):
    conf = make_conf(tmp_path)
    drivers = []

    def open_driver():
        driver = SQLAlchemyDriver(conf)
        drivers.append(driver)
        return driver

    open_driver().upgrade_schema()
    yield open_driver
    for driver in drivers:
        driver.close()


@pytest.fixture
def senders():
    made = []

    def make(driver, bus, **kwargs):
        options = dict(max_backoff=0.05, resume_interval=0.2, lease=1.0)
        options.update(kwargs)
        sender = notifications.Notifications(driver, bus.sender(), **options)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.stop()


def commit(driver, project, count, at=None):
    """Append ``count`` audit records to ``project`` (committed now, or
    at ``at``); return them."""
    at = int(time.time() * 1_000_000) if at is None else at
    return driver.atomic(lambda txn: txn.append_audit(project, [
        {'id': f'e{n}', 'project_id': project, 'at': at, 'kind': 'jobs',
         'action': 'created', 'doc_id': f'job-{n}', 'user_id': 'u'}
        for n in range(count)], audit.seal))


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, 'not in time'
        time.sleep(0.02)


def position(driver, project):
    cursor = driver.get_cursor(notifications.CURSOR, project)
    return None if cursor is None else cursor.position


def ids(project, seqs):
    return [f'{project}:{seq}' for seq in seqs]


def test_events_are_sent_in_order_and_the_cursor_follows(store, senders):
    driver, bus = store(), Bus()
    sender = senders(driver, bus)
    sender.committed(commit(driver, P, 3))
    sender.committed(commit(driver, Q, 1))
    sender.committed(commit(driver, P, 2))
    wait_for(lambda: position(driver, P) == 5 and position(driver, Q) == 1)
    assert [e for e in bus.events if e.startswith(P)] == ids(P, range(1, 6))
    assert len(bus.events) == 6
    # given up once caught up
    wait_for(lambda: driver.get_cursor(notifications.CURSOR, P).holder == ''
             and sender.pending() == 0)


def test_what_a_stopped_process_left_is_sent_by_the_next(store, senders):
    driver, bus = store(), Bus()
    bus.up = False
    first = senders(driver, bus)
    first.committed(commit(driver, P, 4))
    wait_for(lambda: first.failures >= 2)
    first.stop()
    assert bus.events == []
    assert position(driver, P) == 0
    bus.up = True
    # told of nothing: it finds the project behind in the store
    senders(store(), bus)
    wait_for(lambda: position(driver, P) == 4)
    assert bus.events == ids(P, range(1, 5))


def test_a_killed_process_s_lease_is_taken_once_it_ends(store, senders):
    driver, bus = store(), Bus()
    records = commit(driver, P, 3)
    clock = [1000.0]
    # a process that leased the cursor and died before sending anything
    assert driver.lease_cursor(notifications.CURSOR, P, 'dead',
                               1000_000_000, 1001_500_000) is not None
    sender = senders(store(), bus, clock=lambda: clock[0], linger=0)
    # it looked, and left the project to its holder
    wait_for(lambda: sender.scans >= 1)
    # even when told of the records, it is refused the lease
    sender.committed(records)
    wait_for(lambda: P in sender._not_before)
    assert bus.events == []
    assert driver.get_cursor(notifications.CURSOR, P).holder == 'dead'
    clock[0] = 1001.5  # the lease ends
    wait_for(lambda: position(driver, P) == 3)
    wait_for(lambda: driver.get_cursor(notifications.CURSOR, P).holder == '')
    assert sender.sent == 3
    assert bus.events == ids(P, range(1, 4))


def test_two_senders_do_not_both_send_a_range(store, senders):
    bus = Bus(delay=0.005)
    drivers = [store(), store()]
    pair = [senders(d, bus, resume_interval=0.05) for d in drivers]
    for round_ in range(10):
        records = commit(drivers[round_ % 2], P, 3)
        # the worst case: both are told of every record
        for sender in pair:
            sender.committed(records)
    wait_for(lambda: position(drivers[0], P) == 30)
    wait_for(lambda: all(s.pending() == 0 for s in pair))
    assert sorted(bus.events, key=lambda e: int(e.split(':')[1])) == ids(
        P, range(1, 31))
    assert bus.events == ids(P, range(1, 31))  # and in order
    assert pair[0].sent + pair[1].sent == 30


def test_a_trail_older_than_send_cursors_is_not_sent_again(
        store, senders):
    """A store written by a release without send cursors: a project whose
    newest record is older than SEED_AGE is taken as sent; a project
    written recently has its trail sent (duplicates carry the event ids
    the earlier release sent)."""
    driver, bus = store(), Bus()
    now = time.time()
    commit(driver, P, 3, at=int((now - 7200) * 1_000_000))
    commit(driver, Q, 2, at=int((now - 60) * 1_000_000))
    sender = senders(driver, bus)
    wait_for(lambda: position(driver, P) == 3 and position(driver, Q) == 2)
    assert bus.events == ids(Q, [1, 2])
    sender.committed(commit(driver, P, 1))
    wait_for(lambda: position(driver, P) == 4)
    assert bus.events == ids(Q, [1, 2]) + ids(P, [4])


def test_records_purged_before_sending_are_skipped(store, senders):
    driver, bus = store(), Bus()
    # a cursor exists: the project is not one that predates them
    assert driver.lease_cursor(notifications.CURSOR, P, 'x', 0, 0)
    commit(driver, P, 3)
    assert driver.purge_audit(10**18) == 3
    sender = senders(driver, bus, gap_grace=0.3)
    wait_for(lambda: position(driver, P) == 3)
    assert bus.events == [] and sender.sent == 0
    sender.committed(commit(driver, P, 1))
    wait_for(lambda: position(driver, P) == 4)
    assert bus.events == ids(P, [4])
