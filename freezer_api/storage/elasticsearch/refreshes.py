"""Refreshes shared by the concurrent requests of one process.

Elasticsearch shows a write to searches only once its shard is refreshed,
and a refresh is dear: some 14 ms of the server's CPU on the test machine
against about 1.3 ms for the write itself, as each one writes a new
segment that merges must take in again. Asking for one per write
(``refresh=true``) makes the refreshes the limit of every write.

So the requests that need the writes acknowledged so far to be
searchable *wait for a refresh that began after they asked*: such a
refresh covers every write acknowledged before it, on every copy of
every shard, whichever process or host wrote it. While one refresh runs,
those that come meanwhile wait for the next, and the first of them starts
it once the running one is over: however many threads wait, one refresh
at most runs and one waits, and each serves them all. Who waits depends
on ``[elasticsearch] refresh``:

``true`` (the default)
    every change that wrote, once its writes are acknowledged and its
    audit chain let go;
``on_search``
    every search, before it is sent; writes answer without a refresh. A
    refresh when nothing was written since the last costs next to nothing
    (about 0.3 ms of the server's CPU), and one refresh covers every write
    since the last search, however many. Writes are faster, and each
    search pays one more round trip.

A failed refresh fails every request that was waiting for it, as a write
with ``refresh=true`` would have failed after it was applied: the request
answers 503, and a write may have been applied.
"""

import os
import threading

from freezer_api.storage.elasticsearch import failures

__all__ = ['RefreshGroup']

# fork: the first calls in a new process make its state once
_RESET_LOCK = threading.Lock()


class RefreshGroup:
    """The refreshes of one process, for the ``[elasticsearch] refresh``
    mode ``mode``; ``refresh()`` refreshes the index (it raises a
    ``StorageError``).

    ``of_change`` is the ``refresh`` parameter of the writes of a change
    (``after_change`` then waits, if the mode says so); ``of_lone_write``
    that of a write that waits on its own (undo, roll-back: rare).
    """

    def __init__(self, mode, refresh):
        self.mode = mode
        self.of_change = 'wait_for' if mode == 'wait_for' else 'false'
        self.of_lone_write = 'false' if mode == 'on_search' else mode
        self._refresh = refresh
        self._pid = None

    def after_change(self):
        """After a change's writes are acknowledged."""
        if self.mode == 'true':
            self.wait()

    def before_search(self):
        """Before a search is sent."""
        if self.mode == 'on_search':
            self.wait()

    def _reset(self):
        # NOTE: per process: a lock taken over a fork is not released in
        # the child, and waiters of the parent are not the child's.
        self._changed = threading.Condition()
        self._begun = 0        # refreshes begun in this process
        self._finished = 0     # the last one finished
        self._running = False
        self._failed = False   # whether the last one finished failed
        self._pid = os.getpid()  # last: the state above is ready

    def wait(self):
        """Return once a refresh that began after this call has finished;
        raise ``StorageError`` when it failed."""
        if self._pid != os.getpid():
            with _RESET_LOCK:
                if self._pid != os.getpid():
                    self._reset()
        changed = self._changed
        with changed:
            wanted = self._begun + 1
            while self._finished < wanted:
                if self._running:
                    changed.wait()
                    continue
                self._begun += 1
                this = self._begun
                self._running = True
                changed.release()
                failed = True
                try:
                    self._refresh()
                    failed = False
                finally:
                    changed.acquire()
                    self._running = False
                    self._finished = this
                    self._failed = failed
                    changed.notify_all()
            # NOTE: a refresh after the one wanted covers this writer too,
            # so the outcome is that of the last one finished.
            if self._failed:
                raise failures.unavailable()
