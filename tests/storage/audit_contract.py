"""The audit trail part of the storage contract (``append_audit`` and the
audit reads), mixed into ``contract.StorageContract`` so that every engine
runs it."""

import multiprocessing

import pytest

from freezer_api.core import audit
from freezer_api.storage import base
from freezer_api.storage import query as q
from freezer_api.storage.base import Scope

from .threads import run_in_threads

P1, P2, U1 = 'project-1', 'project-2', 'user-1'


def entry(at, name='x', project_id=P1):
    return {'id': f'e-{name}', 'project_id': project_id, 'at': at,
            'doc_id': name, 'fields': ['a'], 'result': 'success'}


def append(driver, project_id, ats, names=None, fail=False):
    """Append one record per ``ats`` in one change; return them sealed."""
    names = names or [str(at) for at in ats]

    def change(txn):
        sealed = txn.append_audit(
            project_id, [entry(at, name, project_id)
                         for at, name in zip(ats, names)], audit.seal)
        if fail:
            raise RuntimeError('rolled back')
        return sealed

    return driver.atomic(change)


def chain(driver, project_id):
    return driver.audit_chain(project_id, 0, base.MAX_LIST_LIMIT)


def _append_worker(factory, project_id, times, tag):
    """Run in another process: append ``times`` records, one per change."""
    driver = factory()
    try:
        for number in range(times):
            append(driver, project_id, [1000 + number], [f'{tag}-{number}'])
    finally:
        driver.close()
    return times


class AuditContract:

    def test_appended_records_chain_from_genesis(self, driver):
        first = append(driver, P1, [10, 20])
        second = append(driver, P1, [30])
        assert [r['seq'] for r in first + second] == [1, 2, 3]
        assert first[0]['prev_hash'] == audit.GENESIS
        stored = chain(driver, P1)
        assert stored == first + second
        assert audit.verify(P1, stored).ok
        assert audit.verify(P1, stored).checked == 3
        assert driver.audit_head(P1) == (3, second[0]['hash'])
        assert driver.audit_head(P2) is None
        assert audit.verify(P1, stored, driver.audit_head(P1)).ok
        truncated = audit.verify(P1, stored[:2], driver.audit_head(P1))
        assert truncated.broken_seq == 3

    def test_records_round_trip_as_json(self, driver):
        sealed = driver.atomic(lambda txn: txn.append_audit(
            P1, [{'id': 'i', 'project_id': P1, 'at': 5, 'name': 'ü\x00',
                  'fields': ['a.b', 'c'], 'roles': [], 'version': None}],
            audit.seal))
        assert chain(driver, P1) == sealed
        assert audit.verify(P1, chain(driver, P1)).ok

    def test_a_rolled_back_change_appends_nothing(self, driver):
        append(driver, P1, [10])
        with pytest.raises(RuntimeError):
            append(driver, P1, [20], fail=True)
        later = append(driver, P1, [30])
        assert later[0]['seq'] == 2
        assert [r['at'] for r in chain(driver, P1)] == [10, 30]
        assert audit.verify(P1, chain(driver, P1)).ok

    def test_a_change_that_fails_after_its_writes_keeps_no_record(
            self, driver):
        def change(txn):
            txn.insert('jobs', 'j1', P1, U1, 1, {'a': 1})
            txn.append_audit(P1, [entry(1)], audit.seal)
            raise RuntimeError('rolled back')

        with pytest.raises(RuntimeError):
            driver.atomic(change)
        assert chain(driver, P1) == []
        assert driver.audit_projects() == []

    def test_projects_have_separate_chains(self, driver):
        append(driver, P1, [10, 30])
        append(driver, P2, [20])
        assert [r['seq'] for r in chain(driver, P2)] == [1]
        assert driver.audit_projects() == [P1, P2]
        every = driver.list_audit(None, None, None, 10, 0)
        assert [(r['project_id'], r['seq']) for r in every] == [
            (P1, 1), (P2, 1), (P1, 2)]

    def test_list_filters_by_time_and_pages(self, driver):
        append(driver, P1, [10, 20, 30, 40, 50])
        append(driver, P2, [25])

        def ats(project_id, since, until, limit=10, offset=0):
            return [r['at'] for r in driver.list_audit(
                project_id, since, until, limit, offset)]

        assert ats(P1, None, None) == [10, 20, 30, 40, 50]
        assert ats(P1, 20, 40) == [20, 30]
        assert ats(P1, 20, None, limit=2, offset=1) == [30, 40]
        assert ats(None, 20, 31) == [20, 25, 30]
        assert ats(P1, 60, None) == []
        assert ats('nobody', None, None) == []

    def test_audit_records_are_no_documents(self, driver):
        append(driver, P1, [10])
        for kind in base.KINDS:
            assert driver.list(kind, Scope(None), q.EMPTY_QUERY, 10, 0) == []

    def test_purge_keeps_the_head(self, driver):
        append(driver, P1, [10, 20, 30])
        assert driver.purge_audit(25) == 2
        assert [r['seq'] for r in chain(driver, P1)] == [3]
        append(driver, P1, [40])
        kept = chain(driver, P1)
        assert [r['seq'] for r in kept] == [3, 4]
        verdict = audit.verify(P1, kept)
        assert verdict.ok and verdict.first_seq == 3
        assert driver.purge_audit(25) == 0

    def test_writers_on_stale_heads_never_fork_the_chain(self, backend,
                                                         driver):
        # Two drivers, each remembering the head it last wrote: every
        # append of one makes the other's stale.
        other = backend.make_driver()
        try:
            for number in range(6):
                append(driver if number % 2 else other, P1, [number])
            stored = chain(driver, P1)
            assert [r['seq'] for r in stored] == list(range(1, 7))
            assert audit.verify(P1, stored).ok
        finally:
            other.close()

    def test_concurrent_appends_from_threads(self, backend, driver):
        workers, times = 6, 5
        drivers = [backend.make_driver(max_pool_size=workers)
                   for _ in range(2)]

        def work(index):
            for number in range(times):
                append(drivers[index % 2], P1, [number],
                       [f'{index}-{number}'])

        failures = run_in_threads(workers, work)
        for d in drivers:
            d.close()
        assert failures == []
        stored = chain(driver, P1)
        assert [r['seq'] for r in stored] == list(
            range(1, workers * times + 1))
        assert len({r['doc_id'] for r in stored}) == workers * times
        assert audit.verify(P1, stored).ok

    @pytest.mark.slow
    def test_concurrent_appends_from_processes(self, backend, driver):
        processes, times = 3, 8
        context = multiprocessing.get_context('spawn')
        with context.Pool(processes) as pool:
            done = pool.starmap(
                _append_worker,
                [(backend.factory(), P1, times, f'p{i}')
                 for i in range(processes)], chunksize=1)
        assert sum(done) == processes * times
        stored = chain(driver, P1)
        assert [r['seq'] for r in stored] == list(
            range(1, processes * times + 1))
        assert audit.verify(P1, stored).ok

    def test_an_event_is_claimed_once(self, backend, driver):
        other = backend.make_driver()
        try:
            assert driver.claim_event('run_failed:p:j:1', 10) is True
            assert other.claim_event('run_failed:p:j:1', 11) is False
            assert driver.claim_event('run_failed:p:j:1', 12) is False
            assert other.claim_event('run_failed:p:j:2', 13) is True
        finally:
            other.close()

    def test_claims_from_threads_have_one_winner(self, backend, driver):
        drivers = [backend.make_driver() for _ in range(2)]
        won = []

        def work(index):
            won.append(drivers[index % 2].claim_event('e-1', index))

        assert run_in_threads(6, work, timeout=60) == []
        for d in drivers:
            d.close()
        assert sorted(won) == [False] * 5 + [True]
