"""The journal of the Elasticsearch driver (``storage.elasticsearch.
journal``) on a real server: a multi-document change interrupted at each
of its steps and then rolled back, sweeps that race each other, writers
and sweeps that lose their claim.

The change of every test updates ``jobs/a``, deletes ``jobs/b`` and
creates ``jobs/c`` and ``jobs/d``: two conditional writes (in ``_id``
order), then a bulk create, then the finish. A crash is a
``BaseException`` raised from a step, which nothing in the driver catches,
so the process "dies" there: no undo, no close.
"""

import threading
import time

import pytest

from freezer_api.storage import errors
from freezer_api.storage.base import Scope
from freezer_api.storage.elasticsearch import documents
from freezer_api.storage.elasticsearch import driver as es_driver
from freezer_api.storage.elasticsearch import journal as es_journal
from tests.conftest import make_conf

pytestmark = pytest.mark.elasticsearch

ALL = Scope(None)
BEFORE = {'a': {'n': 0}, 'b': {'n': 0}}
AFTER = {'a': {'n': 1}, 'c': {'n': 1}, 'd': {'n': 1}}
# Where a change can be cut: after its intent is stored, after each of
# its writes, after its creates, after its finish (then it is made).
STEPS = ['opened', 'wrote jobs/a', 'wrote jobs/b', 'created', 'finished']


class Crash(BaseException):
    """The process dies here."""


@pytest.fixture
def drivers(tmp_path, elasticsearch_index):
    """Make drivers on one fresh index (each with its own journal, as
    separate processes would have); the first creates the index."""
    made = []

    def make():
        driver = es_driver.ElasticsearchDriver(
            make_conf(tmp_path, **elasticsearch_index.overrides))
        if not made:
            driver.upgrade_schema()
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


def seed(driver):
    for doc_id, doc in BEFORE.items():
        driver.create('jobs', doc_id, 'p1', 'u1', 1, doc)


def change(txn):
    a = txn.get('jobs', 'a', ALL)
    txn.update(a, {'n': a.doc['n'] + 1})
    txn.delete(txn.get('jobs', 'b', ALL))
    txn.insert('jobs', 'c', 'p1', 'u1', 2, {'n': 1})
    txn.insert('jobs', 'd', 'p1', 'u1', 2, {'n': 1})


def state(driver):
    """{id: doc} of the jobs, read real-time by id."""
    found = {}
    for doc_id in 'abcd':
        try:
            found[doc_id] = driver.get('jobs', doc_id, ALL).doc
        except errors.NotFound:
            pass
    return found


def intents(driver):
    driver.client.indices.refresh(index=driver._index)
    response = driver.client.search(
        index=driver._index, query={'term': {'kind': es_journal.INTENT}},
        size=100)
    return [hit['_id'] for hit in response['hits']['hits']]


def stamp_of(driver, doc_id):
    hit = driver._get_raw(documents.doc_key('jobs', 'p1', doc_id))
    return hit['_source'].get(documents.STAMP)


def adding(by, doc_ids='a'):
    """A change adding ``by`` to ``n`` of the jobs ``doc_ids``."""
    def bump(txn):
        for doc_id in doc_ids:
            job = txn.get('jobs', doc_id, ALL)
            txn.update(job, {'n': job.doc['n'] + by})
    return bump


def spy(obj, name):
    """Record the first argument of each call of ``obj.name``."""
    calls = []
    real = getattr(obj, name)

    def recorded(first, *args, **kwargs):
        calls.append(first)
        return real(first, *args, **kwargs)

    setattr(obj, name, recorded)
    return calls


def at_step(journal, step, action):
    """Run ``action()`` once, right after ``step`` of the next change
    written through ``journal``."""
    done = []

    def wrap(name, matches):
        real = getattr(journal, name)

        def hooked(*args, **kwargs):
            result = real(*args, **kwargs)
            if not done and matches(args):
                done.append(step)
                action()
            return result

        setattr(journal, name, hooked)

    if step == 'opened':
        wrap('open', lambda args: True)
    elif step.startswith('wrote '):
        key = step.split(' ', 1)[1]
        wrap('write_one', lambda args: args[0] == key)
    elif step == 'created':
        wrap('create_all', lambda args: True)
    else:
        assert step == 'finished'
        wrap('finish', lambda args: args[0] is not None)
    return done


def crash_at(driver, step):
    """Make ``change`` through ``driver`` and cut it at ``step``."""

    def die():
        raise Crash(step)

    done = at_step(driver.journal, step, die)
    with pytest.raises(Crash):
        driver.atomic(change)
    assert done == [step]


def abandoned_at_once(monkeypatch):
    # what a sweep sees once INTENT_GRACE has passed
    monkeypatch.setattr(es_journal, 'INTENT_GRACE', 0.0)


# -- interrupted changes ----------------------------------------------------

@pytest.mark.parametrize('step', STEPS)
def test_change_cut_at_each_step_is_rolled_back_whole(drivers, monkeypatch,
                                                      step):
    writer = drivers()
    seed(writer)
    crash_at(writer, step)
    cut = state(writer)
    if step == 'finished':
        assert cut == AFTER
        assert intents(writer) == []
    else:
        assert len(intents(writer)) == 1
        # the cut is visible until the sweep (no isolation)
        written = {'opened': {}, 'wrote jobs/a': {'a': {'n': 1}},
                   'wrote jobs/b': {'a': {'n': 1}}}.get(step, AFTER)
        assert {k: v for k, v in cut.items() if k not in BEFORE
                or v != BEFORE[k]} == written

    sweeper = drivers()
    # not yet abandoned: the writer's process is alive, its intent new
    assert sweeper.recover_interrupted() == 0
    abandoned_at_once(monkeypatch)
    handled = sweeper.recover_interrupted()
    assert handled == (0 if step == 'finished' else 1)
    assert intents(sweeper) == []
    if step == 'finished':
        assert state(sweeper) == AFTER
        return
    assert state(sweeper) == BEFORE
    assert sweeper.get('jobs', 'a', ALL).version == 1
    assert stamp_of(sweeper, 'a') is None
    assert sweeper.recover_interrupted() == 0
    # and the change can be made again, whole
    sweeper.atomic(change)
    assert state(sweeper) == AFTER
    assert intents(sweeper) == []


def test_roll_back_cut_midway_is_finished_by_the_next_sweep(drivers,
                                                            monkeypatch):
    writer = drivers()
    seed(writer)
    crash_at(writer, 'created')
    abandoned_at_once(monkeypatch)
    first, second = drivers(), drivers()
    real = first.journal.roll_back
    rolled = []

    def roll_back_then_die(*args):
        real(*args)
        rolled.append(args[1]['key'])
        raise Crash('sweep')

    first.journal.roll_back = roll_back_then_die
    with pytest.raises(Crash):
        first.recover_interrupted()
    assert rolled == ['jobs/d']          # newest write first
    assert 'd' not in state(first) and 'c' in state(first)
    assert second.recover_interrupted() == 1
    assert state(second) == BEFORE
    assert intents(second) == []


def test_a_writer_waits_for_the_roll_back_of_a_cut_change(
        drivers, monkeypatch):
    """A change reading a document that a change still under way (or cut)
    wrote does not build on that write: it could then never be undone,
    and a change answered as failed would stay half made (the soak's
    session started by a start answered ``out-of-sync``). It runs again
    until that change is over, here rolled back."""
    writer = drivers()
    seed(writer)
    crash_at(writer, 'created')
    other = drivers()
    other.journal.next_sweep = float('inf')
    other.contention_timeout = 1.0
    waited = spy(other.journal, 'over')
    with pytest.raises(errors.Conflict):
        other.atomic(adding(10))
    assert waited and set(waited) == set(intents(other))
    assert state(other)['a'] == {'n': 1}     # the cut write, left alone
    abandoned_at_once(monkeypatch)
    assert other.recover_interrupted() == 1
    other.atomic(adding(10))                  # on the rolled-back "a"
    assert state(other) == {'a': {'n': 10}, 'b': {'n': 0}}


def test_a_waiting_writer_sweeps_when_the_sweep_is_due(
        drivers, monkeypatch):
    """A writer kept waiting by a cut change rolls it back itself once
    its sweep is due (the first sweep of its request was not), and then
    writes: it does not wait for the next request's sweep."""
    writer = drivers()
    seed(writer)
    crash_at(writer, 'created')
    abandoned_at_once(monkeypatch)
    other = drivers()
    other.journal.next_sweep = time.monotonic() + 0.2
    other.contention_timeout = 5.0
    other.atomic(adding(10))
    assert intents(other) == []
    assert state(other) == {'a': {'n': 10}, 'b': {'n': 0}}


def test_a_write_from_outside_the_driver_survives_the_roll_back(
        drivers, monkeypatch):
    """A write that replaced the cut change's stamp (not made through the
    driver, which waits) keeps its content when the change is rolled
    back."""
    writer = drivers()
    seed(writer)
    crash_at(writer, 'created')
    other = drivers()
    key = documents.doc_key('jobs', 'p1', 'a')
    hit = other._get_raw(key)
    source = dict(hit['_source'], doc={'n': 10})
    source.pop(documents.STAMP)
    other.writer.index(index=other._index, id=key, document=source,
                       if_seq_no=hit['_seq_no'],
                       if_primary_term=hit['_primary_term'])
    abandoned_at_once(monkeypatch)
    assert other.recover_interrupted() == 1
    assert state(other) == {'a': {'n': 10}, 'b': {'n': 0}}


def test_a_finished_change_is_waited_for_once(drivers):
    """The intent of a change found over is remembered: the next writes
    of its documents read nothing more."""
    writer = drivers()
    seed(writer)
    writer.atomic(change)
    stamp = stamp_of(writer, 'a')
    assert stamp is not None
    other = drivers()
    reads = spy(other.journal, '_get_raw')
    bump = adding(1, 'ac')
    other.atomic(bump)
    assert reads == [stamp]
    # its own changes are over once finished: nothing read either
    assert stamp_of(other, 'a') not in (None, stamp)
    other.atomic(bump)
    other.atomic(bump)
    assert reads == [stamp]
    assert state(other)['a'] == {'n': 4}


# -- sweeps racing ----------------------------------------------------------

def test_two_sweepers_one_claim(drivers, monkeypatch):
    """Both read the intent; the first claims and rolls back; the second's
    claim, conditional on what it read, fails and it skips the intent."""
    writer = drivers()
    seed(writer)
    crash_at(writer, 'wrote jobs/b')
    abandoned_at_once(monkeypatch)
    first, second = drivers(), drivers()
    real = second.journal._roll_back_intent
    results = []

    def first_goes_between_read_and_claim(hit):
        results.append(first.recover_interrupted())
        return real(hit)

    second.journal._roll_back_intent = first_goes_between_read_and_claim
    results.append(second.recover_interrupted())
    assert results == [1, 0]
    assert state(writer) == BEFORE
    assert intents(writer) == []


def test_a_sweep_leaves_the_claim_of_a_sweep_of_its_own_journal(
        drivers, monkeypatch):
    """Two threads of one process sweeping with one driver: the claim
    names this journal, and the roll-back under way must not look
    abandoned to the other thread."""
    writer = drivers()
    seed(writer)
    crash_at(writer, 'created')
    abandoned_at_once(monkeypatch)
    sweeper = drivers()
    real = sweeper.journal.roll_back
    inner = []

    def meanwhile(*args):
        if not inner:
            inner.append(sweeper.recover_interrupted())
        return real(*args)

    sweeper.journal.roll_back = meanwhile
    assert sweeper.recover_interrupted() == 1
    assert inner == [0]
    assert state(sweeper) == BEFORE
    assert intents(sweeper) == []


def test_sweeps_in_parallel_roll_back_each_change_once(drivers,
                                                       monkeypatch):
    writer = drivers()
    count = 4
    for n in range(count):
        for doc_id in (f'x{n}', f'y{n}'):
            writer.create('jobs', doc_id, 'p1', 'u1', 1, {'n': 0})

    def die(*args, **kwargs):
        raise Crash('before finish')

    for n in range(count):
        writer.journal.finish = die
        with pytest.raises(Crash):
            writer.atomic(adding(1, (f'x{n}', f'y{n}')))
        del writer.journal.finish
    assert len(intents(writer)) == count
    abandoned_at_once(monkeypatch)
    sweepers = [drivers() for _ in range(3)]
    barrier = threading.Barrier(len(sweepers))
    handled, failed = [], []

    def sweep(driver):
        try:
            barrier.wait(timeout=60)
            handled.append(driver.recover_interrupted())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    threads = [threading.Thread(target=sweep, args=(d,)) for d in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failed == []
    assert sum(handled) == count
    for n in range(count):
        for doc_id in (f'x{n}', f'y{n}'):
            record = writer.get('jobs', doc_id, ALL)
            assert (record.doc, record.version) == ({'n': 0}, 1)
    assert intents(writer) == []


def test_a_sweep_whose_claim_was_taken_over_stops(drivers, monkeypatch):
    """A sweep stalls past the grace time; another takes the intent over
    and finishes; a writer then deletes "b" for good. The stalled sweep,
    resuming, must not bring "b" back."""
    writer = drivers()
    seed(writer)
    crash_at(writer, 'created')
    abandoned_at_once(monkeypatch)
    stalled, other = drivers(), drivers()
    other.journal.next_sweep = float('inf')
    real = stalled.journal.roll_back
    taken = []

    def stall(*args):
        if not taken:
            taken.append(other.recover_interrupted())
            assert state(other) == BEFORE
            other.delete('jobs', 'b', ALL)
        return real(*args)

    stalled.journal.roll_back = stall
    assert stalled.recover_interrupted() == 0
    assert taken == [1]
    assert state(stalled) == {'a': {'n': 0}}
    assert intents(stalled) == []


# -- writers losing their claim ---------------------------------------------

@pytest.mark.parametrize('step', STEPS[:-1])
def test_writer_whose_intent_is_claimed_undoes_and_fails(drivers, step):
    writer = drivers()
    seed(writer)
    sweeper = drivers()
    swept = []
    at_step(writer.journal, step, lambda: swept.append(
        sweeper.recover_interrupted(everything=True)))
    with pytest.raises(errors.Unavailable):
        writer.atomic(change)
    assert swept == [1]
    assert state(writer) == BEFORE
    assert intents(writer) == []
    assert writer.recover_interrupted(everything=True) == 0


def test_another_driver_of_the_process_leaves_a_live_change_alone(drivers):
    """Ownership is per journal, not per process: a second driver of this
    process must not take the first one's change under way for the change
    of a process that is over (it did, when the token named the
    process)."""
    writer = drivers()
    seed(writer)
    neighbour = drivers()
    swept = []
    at_step(writer.journal, 'wrote jobs/a', lambda: swept.extend([
        neighbour.recover_interrupted(),
        writer.recover_interrupted()]))
    writer.atomic(change)
    assert swept == [0, 0]
    assert state(writer) == AFTER
    assert intents(writer) == []


def test_writer_past_its_lease_gives_up(drivers, monkeypatch):
    writer = drivers()
    seed(writer)
    monkeypatch.setattr(es_journal, 'LEASE', 0.0)
    with pytest.raises(errors.Unavailable):
        writer.atomic(change)
    assert state(writer) == BEFORE
    # the intent is left (the outcome of a failed write is unknown) and
    # no longer held: the writer's own next sweep takes it
    assert len(intents(writer)) == 1
    assert writer.recover_interrupted() == 1
    assert intents(writer) == []
    assert state(writer) == BEFORE


def test_owner_token_is_per_journal_and_per_process(drivers, monkeypatch):
    first, second = drivers(), drivers()
    assert first.journal.owner != second.journal.owner
    token = first.journal.owner
    assert first.journal.owner == token
    with monkeypatch.context() as forked:
        forked.setattr(es_journal.os, 'getpid', lambda: -1)
        assert first.journal.owner != token
