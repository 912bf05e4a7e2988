"""Turns of the writers contending for one document, across processes.

A change runs optimistically first: it reads, then writes conditionally on
what it read (see ``journal``). One that lost to another writer's commit
(``base.Contended``) runs again in its *turn* on what it lost on (a
document, or a project's audit chain): the threads of one process queue
on a lock of the process, then one of them at a time holds a *turn
document* in the index, which the writers of other processes wait for.
So contended writers take turns instead of racing each other again and
again, however many uwsgi workers they run in, and the one in its turn
races only with the first, optimistic attempts of other changes: it gets
through, and a change without a condition of its own is never refused.

A turn document (kind ``_turn``, never listed) is created with
``create`` (only one writer can) and deleted by its holder,
conditionally on the sequence number its creation got. It carries a
lease: a holder that died (or stalled) is taken over once the lease is
over, conditionally on the sequence number read, so a turn is never
lost for longer than ``LEASE``. Turns decide fairness only: correctness
still rests on the conditional writes, so a turn taken over early, or not
held at all (a waiter past its change's deadline goes ahead without it),
costs a lost race at worst, never a lost write.

The first, uncontended attempt of a change takes no turn and sends no
request more than before.
"""

import contextlib
import hashlib
import logging
import os
import random
import socket
import threading
import time

import elasticsearch

from freezer_api.storage import errors
from freezer_api.storage.elasticsearch import failures

__all__ = ['TURN', 'LEASE', 'Turns']

LOG = logging.getLogger(__name__)

TURN = '_turn'       # the kind of the turn documents
LEASE = 10.0         # seconds a turn is held at most before others take it
_POLL_FIRST = 0.001  # seconds between looks at a held turn: the first...
_POLL_CAP = 0.02     # ...doubling up to this (random part, as backoff)
# Locks of one process: threads waiting for turns on different things
# rarely share one.
_STRIPES = 64

_HOSTNAME = socket.gethostname()


class Turns:
    """The turns of one driver (see the module's docstring).

    ``clients`` gives ``client`` (reads) and ``writer`` (writes never sent
    twice).
    """

    def __init__(self, clients, index):
        self._clients = clients
        self._index = index
        self._locks = [threading.RLock() for _ in range(_STRIPES)]

    @staticmethod
    def turn_key(spot):
        """The ``_id`` of the turn document of ``spot`` (a document's or
        an audit chain's ``_id``)."""
        digest = hashlib.sha256(spot.encode('utf-8')).hexdigest()
        return f'{TURN}/{digest}'

    @contextlib.contextmanager
    def turn(self, spot, deadline):
        """Hold the turn on ``spot`` for the block: wait for this
        process's other writers of it, then for the other processes'
        (until the time.monotonic() ``deadline``, if not None)."""
        key = self.turn_key(spot)
        lock = self._locks[hash(key) % _STRIPES]
        timeout = -1 if deadline is None else max(
            0.0, deadline - time.monotonic())
        if not lock.acquire(timeout=timeout):
            # past the change's deadline: one more optimistic attempt
            yield
            return
        try:
            held = self._take(key, deadline)
            try:
                yield
            finally:
                if held is not None:
                    self._give_back(key, held)
        finally:
            lock.release()

    def _take(self, key, deadline):
        """Create the turn document; return its sequence number, or None
        when the deadline passed first."""
        delay = _POLL_FIRST
        while True:
            hit = self._read(key)
            if hit is None:
                taken = self._create(key)
                if taken is not None:
                    return taken
            elif hit['_source']['doc'].get('until', 0) < time.time():
                LOG.warning('Taking over a turn held past its lease (by '
                            'process %s on %s)',
                            hit['_source']['doc'].get('pid'),
                            hit['_source']['doc'].get('host'))
                self._end(key, (hit['_seq_no'], hit['_primary_term']))
                continue
            if deadline is not None and time.monotonic() >= deadline:
                return None
            # jitter between looks, not a secret
            time.sleep(random.uniform(0, delay))  # nosec B311
            delay = min(_POLL_CAP, delay * 2)

    def _read(self, key):
        with failures.guard('waiting for a turn to write'):
            try:
                return self._clients.client.get(index=self._index, id=key,
                                                realtime=True)
            except elasticsearch.NotFoundError as exc:
                if failures.error_type(exc) is None:
                    return None
                raise

    def _create(self, key):
        now = time.time()
        document = {
            'kind': TURN, 'key': key, 'id': key.partition('/')[2],
            'project_id': '', 'user_id': '', 'version': 1,
            'created_at': int(now * 1e6),
            'doc': {'host': _HOSTNAME, 'pid': os.getpid(),
                    'until': now + LEASE}}
        with failures.guard('taking a turn to write'):
            try:
                response = self._clients.writer.create(
                    index=self._index, id=key, document=document,
                    refresh='false', require_alias=True)
            except elasticsearch.ConflictError:
                return None  # another writer took it first
        return response['_seq_no'], response['_primary_term']

    def _end(self, key, seq):
        """Delete a turn document if it is still the one of ``seq``."""
        seq_no, term = seq
        with failures.guard('ending a turn to write'):
            try:
                self._clients.writer.delete(
                    index=self._index, id=key, if_seq_no=seq_no,
                    if_primary_term=term, refresh='false')
            except (elasticsearch.ConflictError,
                    elasticsearch.NotFoundError):
                pass  # taken over, or ended, meanwhile

    def _give_back(self, key, seq):
        try:
            self._end(key, seq)
        except errors.StorageError as exc:
            LOG.warning('Could not end a turn to write (others wait for '
                        'its lease of %d s): %s', LEASE, exc)
