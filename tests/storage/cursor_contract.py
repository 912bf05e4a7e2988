"""The cursor part of the storage contract (``get_cursor``,
``lease_cursor``, ``advance_cursor``), mixed into
``contract.StorageContract`` so that every engine runs it."""

from freezer_api.storage import base

from .threads import run_in_threads

N, K = 'sending', 'project-1'


class CursorContract:

    def test_an_absent_cursor_is_created_by_its_first_lease(self, driver):
        assert driver.get_cursor(N, K) is None
        leased = driver.lease_cursor(N, K, 'a', 100, 200)
        assert leased == base.Cursor(N, K, 0, 'a', 200)
        assert driver.get_cursor(N, K) == leased
        assert driver.get_cursor(N, 'project-2') is None
        assert driver.get_cursor('other', K) is None

    def test_a_running_lease_is_refused_to_others(self, backend, driver):
        other = backend.make_driver()
        try:
            assert driver.lease_cursor(N, K, 'a', 100, 200) is not None
            assert other.lease_cursor(N, K, 'b', 150, 250) is None
            assert driver.get_cursor(N, K).holder == 'a'
            # renewed by its holder
            assert other.lease_cursor(N, K, 'a', 150, 300) == base.Cursor(
                N, K, 0, 'a', 300)
            # taken once it ended
            assert other.lease_cursor(N, K, 'b', 300, 400) == base.Cursor(
                N, K, 0, 'b', 400)
            assert driver.advance_cursor(N, K, 'a', 5, 500) is False
            assert driver.get_cursor(N, K) == base.Cursor(N, K, 0, 'b', 400)
        finally:
            other.close()

    def test_advance_moves_forward_and_releases(self, driver):
        driver.lease_cursor(N, K, 'a', 100, 200)
        assert driver.advance_cursor(N, K, 'a', 7, 300) is True
        assert driver.get_cursor(N, K) == base.Cursor(N, K, 7, 'a', 300)
        assert driver.advance_cursor(N, K, 'a', 3, 300) is True
        assert driver.get_cursor(N, K).position == 7
        assert driver.advance_cursor(N, K, 'a', 9, 0) is True
        assert driver.get_cursor(N, K) == base.Cursor(N, K, 9, '', 0)
        # given up: the next holder takes it at once, where it stands
        assert driver.advance_cursor(N, K, 'a', 10, 300) is False
        assert driver.lease_cursor(N, K, 'b', 100, 200) == base.Cursor(
            N, K, 9, 'b', 200)

    def test_advancing_an_absent_cursor_changes_nothing(self, driver):
        assert driver.advance_cursor(N, K, 'a', 3, 100) is False
        assert driver.get_cursor(N, K) is None

    def test_names_and_keys_are_apart_and_exact(self, driver):
        long_key = 'p' * 128
        for name, key in ((N, long_key), ('x' * 64, K), (N, 'ü/ %')):
            assert driver.lease_cursor(name, key, 'h' * 128, 1, 2) \
                is not None
        driver.advance_cursor(N, long_key, 'h' * 128, 4, 0)
        assert driver.get_cursor(N, long_key).position == 4
        assert driver.get_cursor('x' * 64, K).position == 0
        assert driver.get_cursor(N, 'Ü/ %') is None
        assert driver.get_cursor(N, 'ü/ %').holder == 'h' * 128

    def test_one_lease_among_racing_processes(self, backend, driver):
        drivers = [backend.make_driver() for _ in range(2)]
        won = []

        def work(index):
            leased = drivers[index % 2].lease_cursor(
                N, K, f'h{index}', 100, 200)
            if leased is not None:
                won.append(leased.holder)

        assert run_in_threads(6, work, timeout=60) == []
        for d in drivers:
            d.close()
        assert len(won) == 1
        assert driver.get_cursor(N, K).holder == won[0]
