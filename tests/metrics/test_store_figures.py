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
