"""The figures read from the store: one reading shared by the processes
of a service for [metrics] store_cache_seconds."""

from freezer_api.metrics import store
from tests.conftest import Clock

BACKENDS = ('sqlite',)


def figures_of(collector):
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in collector.collect() for sample in family.samples}


def counting(storage, monkeypatch):
    calls = []
    real = storage.count

    def count(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(storage, 'count', count)
    return calls


def test_processes_share_one_reading(storage, tmp_path, monkeypatch):
    calls = counting(storage, monkeypatch)
    clock = Clock()
    shared = tmp_path / 'store-figures.json'
    # two collectors: two processes of one service
    first = store.StoreFigures(storage, 30, shared_file=shared, clock=clock)
    second = store.StoreFigures(storage, 30, shared_file=shared,
                                clock=clock)
    figures = figures_of(first)
    assert figures[('freezer_api_store_figures_up', ())] == 1
    assert figures[('freezer_api_documents', (('kind', 'jobs'),))] == 0
    reads = len(calls)
    assert reads > 0
    assert figures_of(second) == figures
    assert len(calls) == reads  # the second process read no store
    clock.advance(31)
    assert figures_of(second) == figures
    assert len(calls) == 2 * reads  # expired: read once more
    assert figures_of(first) == figures
    assert len(calls) == 2 * reads


def test_unreadable_shared_file_is_read_again(storage, tmp_path,
                                              monkeypatch):
    shared = tmp_path / 'store-figures.json'
    shared.write_text('{not json')
    collector = store.StoreFigures(storage, 30, shared_file=shared,
                                   clock=Clock())
    assert figures_of(collector)[('freezer_api_store_figures_up', ())] == 1


def test_slow_counting_is_done_less_often(storage, tmp_path, monkeypatch):
    calls = counting(storage, monkeypatch)
    clock = Clock()
    # counting takes 10 s of the monotonic clock
    ticks = iter([0.0, 10.0, 100.0, 110.0])
    collector = store.StoreFigures(storage, 30, clock=clock,
                                   timer=lambda: next(ticks),
                                   shared_file=tmp_path / 'shared.json')
    figures_of(collector)
    reads = len(calls)
    clock.advance(60)  # past store_cache_seconds, within 10 x 10 s
    figures_of(collector)
    assert len(calls) == reads
    clock.advance(41)
    figures_of(collector)
    assert len(calls) == 2 * reads


def test_count_default_pages_through_every_match(storage):
    from freezer_api.storage import base
    from freezer_api.storage.query import Query
    from freezer_api.storage.query import Term

    total = base.MAX_LIST_LIMIT + 5
    for number in range(total):
        storage.create('actions', f'a{number:05d}', 'p1' if number % 2
                       else 'p2', 'u1', number,
                       {'freezer_action': {'mode': 'fs' if number % 3
                                           else 'mysql'}})
    everyone = base.Scope(None)
    assert storage.count('actions', everyone, Query()) == total
    assert storage.count('actions', base.Scope('p1'), Query()) == total // 2
    mysql = Query(match=(Term('freezer_action.mode', 'mysql'),))
    assert storage.count('actions', everyone, mysql) == len(
        range(0, total, 3))
    assert storage.count('jobs', everyone, Query()) == 0


def test_a_failing_count_leaves_the_figures_out(storage, monkeypatch):
    def broken(*args):
        raise KeyError('a bug')

    monkeypatch.setattr(storage, 'count', broken)
    figures = figures_of(store.StoreFigures(storage, 30, clock=Clock()))
    assert figures == {('freezer_api_store_figures_up', ()): 0}
