"""The journal of the Elasticsearch driver's multi-document changes.

Elasticsearch has no multi-document transactions; this module makes a
change of several documents all-or-nothing against every other writer
that goes through this driver, in any process, and lets a later process
roll back a change cut short.

Protocol of a change (``Journal.commit``)
    A change that writes one document is one conditional write (an
    ``index``/``delete`` conditional on the ``_seq_no``/``_primary_term``
    read, or a ``create``): atomic by itself, no journal.

    A change that writes several:

    1. *open*: creates an intent document (kind ``_intent``, a random
       ``_id``, never listed) holding its owner (host, pid, owner token,
       time) and, for each write, the document before (with its stamp)
       and after;
    2. *apply*: writes the documents that existed, in ``_id`` order, each
       conditional on the sequence number read (409: a lost race), then
       creates the new ones in bulk (409: an id taken); every document
       written carries the intent's ``_id`` in ``documents.STAMP``;
    3. *finish*: deletes the intent, conditionally on the sequence number
       its creation got. This is the commit point: the change is
       acknowledged only when this delete succeeds after the last write.

    A change that lost a race undoes the writes it applied (newest first,
    each conditional on the sequence number its own write got) and, when
    all were undone, deletes its intent (*close*); then ``run_atomic``
    runs it again. A change that failed otherwise (the outcome of the
    failed request is unknown) undoes what it knows and leaves its intent
    to the sweep.

What is atomic against what
    * Two writers of a shared document: its conditional write orders
      them; the loser undoes its partial writes.
    * A writer against a sweep: the sweep *claims* the intent with a write
      conditional on the sequence number it read, and the writer finishes
      with a delete conditional on the one it got: on one sequence number
      of the intent only one of them succeeds. A writer whose intent was
      claimed undoes its writes and answers ``Unavailable`` (503); the
      change was not made.
    * Two sweeps: the same conditional claim; the loser skips the intent.
    * Ownership is by *owner token*, one per ``Journal`` (one per driver)
      per process, never by process alone: a journal treats an intent or
      a claim as its own only when it carries its token, and as abandoned
      only when it no longer holds it (the change or the roll-back is
      over). Two drivers of one process, or two threads sweeping at once,
      so never take each other's live change or claim.

What a reader can see
    A one-document change: all or nothing. A multi-document change: for
    the few milliseconds between its first write and its finish, and for
    an interrupted change until it is rolled back, the first writes
    without the last (reads do not look at stamps).

What a writer can build on
    Only what changes that are over wrote. A change that would write a
    document carrying the stamp of an intent still there waits for that
    change to be over (``over``), and runs again if it is not within
    ``SETTLE_WAIT`` (a lost race, in turn): a write that its change may
    still undo is never written on, so every undo of a change that lost a
    race succeeds, and a change that failed leaves nothing. A document of
    an interrupted change refuses writes until the sweep rolls it back.

What recovery guarantees
    An intent left behind is rolled back by ``recover`` once its owner can
    no longer write: its own journal when it no longer holds it, a
    process of this host that is gone, or anyone once the intent (or its
    claim) is older than ``INTENT_GRACE`` seconds (a writer gives up,
    unacknowledged, ``LEASE`` seconds after it opened the intent, before
    each write, so that a late claim never races with it). The sweep
    claims the intent, then for each write, newest first, gives a
    document that still carries the intent's stamp its earlier content,
    conditionally on the sequence number read, and re-creates from its
    earlier content a document the change deleted that is still absent;
    then it deletes the intent, conditionally on its claim. A document
    written since (its stamp replaced) keeps the newer write; a roll-back
    run twice does what it did once. A sweep that finds its claim taken
    over (it stalled past the grace time) stops before its next write.
    Every process sweeps at its first change, then at most every
    ``SWEEP_INTERVAL`` seconds.

What it does not guarantee
    Isolation for readers (above). Re-creating a deleted document is
    conditional on its absence only: a document deleted by a third writer
    in the moment between a roll-back and the late undo of the change's
    own writer (or of a sweep that stalled past the grace time) can come
    back. The grace time assumes the clocks of the hosts agree within
    ``INTENT_GRACE - LEASE`` seconds.
"""

import collections
import logging
import os
import socket
import threading
import time

import elasticsearch

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage.elasticsearch import audit
from freezer_api.storage.elasticsearch import documents
from freezer_api.storage.elasticsearch import failures

__all__ = ['INTENT', 'SWEEP_INTERVAL', 'INTENT_GRACE', 'LEASE', 'Entry',
           'Intent', 'Journal']

LOG = logging.getLogger(__name__)

INTENT = '_intent'        # the kind of the intent documents
SWEEP_INTERVAL = 10.0     # seconds between two looks for interrupted changes
INTENT_GRACE = 120.0      # seconds after which any intent counts as abandoned
# A change stops writing (and fails) this long after it stored its intent,
# so that a sweep that takes the intent after INTENT_GRACE never races
# with it (the margin covers clocks of hosts that disagree).
LEASE = INTENT_GRACE / 2
BULK_CHUNK = 500
# How long a change waits for the change that last wrote a document it
# writes (or its chain's head) to be over, and how often it looks
# meanwhile (doubling), before it runs again in turn.
SETTLE_WAIT = 0.5
SETTLE_POLL = 0.001
SETTLE_POLL_CAP = 0.02
# Intents known to be over, remembered (per journal) to spare a get.
OVER_REMEMBERED = 4096

_HOSTNAME = socket.gethostname()


class Entry:
    """What a change knows of one document."""

    __slots__ = ('seq', 'original', 'current', 'stamp')

    def __init__(self, seq, original, stamp=None):
        # (_seq_no, _primary_term) of the stored document, None if absent.
        self.seq = seq
        self.original = original   # the stored Record, or None
        self.current = original    # as the change sees it now
        self.stamp = stamp         # the stored document's journal stamp

    @classmethod
    def of_hit(cls, hit):
        """The entry of a stored document (a get or search hit with its
        sequence number)."""
        return cls((hit['_seq_no'], hit['_primary_term']),
                   documents.record(hit['_source']),
                   hit['_source'].get(documents.STAMP))

    @property
    def changed(self):
        return self.current is not self.original


class Intent:
    """The journal entry of one multi-document change under way."""

    __slots__ = ('key', 'seq', 'started')

    def __init__(self, key):
        self.key = key
        self.seq = None
        self.started = time.monotonic()

    def check_lease(self):
        if time.monotonic() - self.started > LEASE:
            LOG.error('A change took longer than %d s; giving it up', LEASE)
            raise failures.unavailable()


class Journal:
    """The multi-document changes of one driver, and the sweep that rolls
    back interrupted ones (see the module's docstring).

    ``clients`` gives ``client`` (reads) and ``writer`` (writes never sent
    twice); ``get_raw(key)`` is a real-time get (None when absent).
    """

    def __init__(self, clients, get_raw, index, refreshes):
        self._clients = clients
        self._get_raw = get_raw
        self._index = index
        self._refreshes = refreshes  # a refreshes.RefreshGroup
        self._owner = None
        self._owner_pid = None
        # Intents this journal holds: of its changes under way, and those
        # it claimed and is rolling back. key -> anything.
        self._held = {}
        # Intents known to be over (deleted), oldest first: never live
        # again (intent ids are random). key -> None.
        self._over = collections.OrderedDict()
        self.next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    @property
    def owner(self):
        """The token naming this journal in the intents and claims it
        writes; a new one in a process forked after it was made."""
        pid = os.getpid()
        if self._owner_pid != pid:
            self._owner = f'{os.urandom(8).hex()}-{pid}'
            self._owner_pid = pid
        return self._owner

    def _stamp_of_owner(self):
        return {'host': _HOSTNAME, 'pid': os.getpid(), 'token': self.owner,
                'time': time.time()}

    # -- a change ----------------------------------------------------------

    def commit(self, conditional, creates):
        """Apply a change's writes: ``conditional`` (key, Entry) of
        documents that existed, in ``_id`` order; ``creates`` of new ones.

        :raises Contended: a conditional write found its document changed,
            or a record's seq taken in the audit chain (the writes applied
            were undone).
        :raises IdTaken: a create found its id taken (same).
        :raises StorageError: the change was not acknowledged.
        :returns: whether it wrote anything.
        """
        count = len(conditional) + len(creates)
        if count == 0:
            return False
        for key, entry in conditional:
            # NOTE: a document read while another change was writing it
            # may hold a write that change still undoes; built on, it
            # could not be undone, and a change answered as failed would
            # stay half made. Wait for that change to be over first.
            if entry.stamp is not None and not self.over(entry.stamp):
                # its writer may be gone: roll it back now if the sweep
                # is due, rather than at the next request's
                self.maybe_recover()
                raise base.Contended(key)
        # PERF: with refresh = true, the caller waits for a refresh
        # shared with the process's other writers (``refreshes``) once the
        # change is done; with wait_for each write waits for the periodic
        # one.
        refresh = self._refreshes.of_change
        intent = None
        if count > 1:
            intent = self.open(conditional + creates)
        stamp = intent and intent.key
        applied = []  # (key, entry, new seq) of writes done, for undo
        try:
            with failures.guard('writing documents'):
                for key, entry in conditional:
                    if intent is not None:
                        intent.check_lease()
                    applied.append(self.write_one(key, entry, refresh,
                                                  stamp))
                if creates:
                    if intent is not None:
                        intent.check_lease()
                    self.create_all(creates, refresh, applied, stamp)
        except (base.LostRace, base.IdTaken):
            # Every write not in ``applied`` was refused: undoing the
            # others restores the documents, and the intent can go.
            self.close(intent, self.undo(applied))
            raise
        except errors.StorageError:
            if applied:
                LOG.error('Writing a change failed after %d of its %d '
                          'writes; undoing them', len(applied), count)
                self.undo(applied)
            # NOTE: the write that failed may have been applied all the
            # same (a timeout, a connection cut after sending): the intent
            # stays, and the sweep rolls back whatever still carries its
            # stamp.
            self.close(intent, False)
            raise
        self.finish(intent, applied)
        return True

    def open(self, writes):
        """Store what a multi-document change is about to write."""
        intent_id = os.urandom(16).hex()
        key = f'{INTENT}/{intent_id}'
        doc = dict(self._stamp_of_owner(), writes=[
            {'key': k, 'before': documents.image(e.original),
             'before_stamp': e.stamp, 'after': documents.image(e.current)}
            for k, e in writes])
        intent = Intent(key)
        self._held[key] = intent
        try:
            with failures.guard('writing documents'):
                response = self._clients.writer.create(
                    index=self._index, id=key, refresh='false',
                    require_alias=True,
                    document={'kind': INTENT, 'key': key, 'id': intent_id,
                              'project_id': '', 'user_id': '', 'version': 1,
                              'created_at': int(time.time() * 1e6),
                              'doc': doc})
        except BaseException:
            self._held.pop(key, None)
            raise
        intent.seq = (response['_seq_no'], response['_primary_term'])
        return intent

    def close(self, intent, undone):
        """Drop the intent of a change that failed, if its writes were all
        undone; otherwise leave it to the sweep."""
        if intent is None:
            return
        try:
            if undone:
                self._delete_intent(intent)
        except failures.CLIENT_ERRORS as exc:
            # harmless: nothing carries its stamp any more
            LOG.warning('Could not drop the journal entry %s: %s',
                        intent.key, exc)
        finally:
            # only now may a sweep of this journal take it (when left)
            self._held.pop(intent.key, None)

    def finish(self, intent, applied):
        """Acknowledge a change whose writes were all applied: deleting its
        intent (conditionally on the sequence number its creation got) is
        the point after which no sweep can roll the change back."""
        if intent is None:
            return
        try:
            self._delete_intent(intent)
        except (elasticsearch.ConflictError, elasticsearch.NotFoundError):
            # A sweep claimed it (this change outlived its lease, or its
            # owner looked gone): the change is being rolled back. Take
            # back what is still ours, and do not acknowledge it.
            LOG.error('The journal entry %s of a change was claimed by a '
                      'sweep; undoing the change', intent.key)
            self.undo(applied)
            raise failures.unavailable() from None
        except failures.CLIENT_ERRORS as exc:
            # Deleted or not: not acknowledged. If it is still there, the
            # sweep rolls the change back.
            LOG.error('Could not drop the journal entry %s: %s',
                      intent.key, exc)
            raise failures.unavailable() from None
        finally:
            self._held.pop(intent.key, None)

    def _delete_intent(self, intent):
        seq_no, term = intent.seq
        self._clients.writer.delete(index=self._index, id=intent.key,
                                    refresh='false', if_seq_no=seq_no,
                                    if_primary_term=term)
        self._remember_over(intent.key)

    def _remember_over(self, key):
        self._over[key] = None
        if len(self._over) > OVER_REMEMBERED:
            self._over.popitem(last=False)

    def over(self, stamp):
        """Whether the change whose intent is ``stamp`` is over (its intent
        deleted: finished, or rolled back); waits up to ``SETTLE_WAIT``
        seconds for it. A change of this journal under way, or being
        rolled back by its sweep, is waited for without reading."""
        if stamp in self._over:
            return True
        deadline = time.monotonic() + SETTLE_WAIT
        delay = SETTLE_POLL
        while stamp in self._held or self._get_raw(stamp) is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, SETTLE_POLL_CAP)
        self._remember_over(stamp)
        return True

    def write_one(self, key, entry, refresh, stamp=None):
        """Update or delete one document that existed, conditionally on
        the sequence number read; return (key, entry, new seq)."""
        seq_no, term = entry.seq
        writer = self._clients.writer
        try:
            if entry.current is None:
                response = writer.delete(
                    index=self._index, id=key, if_seq_no=seq_no,
                    if_primary_term=term, refresh=refresh)
            else:
                response = writer.index(
                    index=self._index, id=key,
                    document=documents.source(entry.current, stamp),
                    if_seq_no=seq_no, if_primary_term=term, refresh=refresh,
                    require_alias=True)
        except elasticsearch.ApiError as exc:
            if failures.is_version_conflict(exc) or (
                    entry.current is None and failures.status(exc) == 404):
                LOG.debug('Change lost a race on %s', key)
                raise base.Contended(key) from None
            raise
        LOG.debug('Wrote %s', key)
        return key, entry, (response['_seq_no'], response['_primary_term'])

    def create_all(self, creates, refresh, applied, stamp=None):
        """Create new documents; append each one created to ``applied``.

        :raises IdTaken: one of the ids was taken.
        """
        writer = self._clients.writer
        if len(creates) == 1:
            key, entry = creates[0]
            try:
                response = writer.create(
                    index=self._index, id=key,
                    document=documents.source(entry.current, stamp),
                    refresh=refresh, require_alias=True)
            except elasticsearch.ConflictError:
                if entry.current.kind == audit.AUDIT_KIND:  # seq taken
                    raise base.Contended(audit.chain_spot(
                        entry.current.project_id)) from None
                raise base.IdTaken(f'{entry.current.kind} '
                                   f'{entry.current.id!r} already exists') \
                    from None
            applied.append((key, entry, (response['_seq_no'],
                                         response['_primary_term'])))
            return
        for start in range(0, len(creates), BULK_CHUNK):
            chunk = creates[start:start + BULK_CHUNK]
            operations = []
            for key, entry in chunk:
                operations.append({'create': {'_id': key}})
                operations.append(documents.source(entry.current, stamp))
            last = start + BULK_CHUNK >= len(creates)
            response = writer.bulk(
                index=self._index, operations=operations,
                refresh=refresh if last else 'false', require_alias=True)
            collision = None
            failure = None
            for (key, entry), item in zip(chunk, response['items']):
                result = item.get('create', {})
                status = result.get('status', 500)
                if status < 300:
                    applied.append((key, entry, (result['_seq_no'],
                                                 result['_primary_term'])))
                elif status == 409:
                    collision = entry.current
                else:
                    failure = result
            if failure is not None:
                raise failures.bulk_item_error(failure)
            if collision is not None:
                if collision.kind == audit.AUDIT_KIND:  # seq taken
                    raise base.Contended(audit.chain_spot(
                        collision.project_id))
                raise base.IdTaken(f'{collision.kind} {collision.id!r} '
                                   'already exists')

    def undo(self, applied):
        """Revert applied writes, newest first, each only if unchanged;
        tell whether all were reverted."""
        writer = self._clients.writer
        complete = True
        for key, entry, (seq_no, term) in reversed(applied):
            try:
                if entry.original is None:
                    writer.delete(index=self._index, id=key,
                                  if_seq_no=seq_no, if_primary_term=term,
                                  refresh=self._refreshes.of_lone_write)
                elif entry.current is None:
                    writer.create(index=self._index, id=key,
                                  document=documents.source(entry.original,
                                                            entry.stamp),
                                  refresh=self._refreshes.of_lone_write,
                                  require_alias=True)
                else:
                    writer.index(index=self._index, id=key,
                                 document=documents.source(entry.original,
                                                           entry.stamp),
                                 if_seq_no=seq_no, if_primary_term=term,
                                 refresh=self._refreshes.of_lone_write,
                                 require_alias=True)
                LOG.debug('Undid the write of %s', key)
            except failures.CLIENT_ERRORS as exc:
                complete = False
                LOG.error('Could not undo the write of %s (a concurrent '
                          'change may have been partly applied): %s', key,
                          exc)
        return complete

    # -- the sweep ---------------------------------------------------------

    def maybe_recover(self):
        """Sweep, unless this journal swept less than ``SWEEP_INTERVAL``
        seconds ago or is sweeping now."""
        now = time.monotonic()
        if now < self.next_sweep or not self._sweep_lock.acquire(
                blocking=False):
            return
        try:
            self.next_sweep = now + SWEEP_INTERVAL
            self.recover()
        except errors.StorageError as exc:
            LOG.warning('Could not look for interrupted changes: %s', exc)
        finally:
            self._sweep_lock.release()

    def abandoned(self, key, intent, now):
        """Whether the owner of an intent can no longer write: this journal
        when it no longer holds it, a process of this host that is gone, or
        any owner once the intent is older than ``INTENT_GRACE``."""
        # a claimed intent belongs to the sweep rolling it back
        owner = intent.get('claimed') or intent
        if owner.get('token') == self.owner:
            return key not in self._held
        if now - owner.get('time', 0) > INTENT_GRACE:
            return True
        if owner.get('host') != _HOSTNAME:
            return False
        try:
            os.kill(int(owner.get('pid')), 0)
        except ProcessLookupError:
            return True
        except (OSError, TypeError, ValueError):
            return False
        return False

    def recover(self, everything=False):
        """Roll back the changes whose owners can no longer write.

        ``everything`` also takes intents of live owners, except those this
        journal holds (for ``freezer-manage`` and tests, when no other
        process writes). Returns the number of intents rolled back.
        """
        client = self._clients.client
        with failures.guard('recovering interrupted changes'):
            # NOTE: intents are written without a refresh; make them
            # searchable first (a sweep runs at most every few seconds).
            client.indices.refresh(index=self._index)
            response = client.search(
                index=self._index, query={'term': {'kind': INTENT}},
                size=100, seq_no_primary_term=True, track_total_hits=False)
        handled = 0
        now = time.time()
        for hit in response['hits']['hits']:
            key = hit['_id']
            intent = hit['_source']['doc']
            if key in self._held or (
                    not everything and not self.abandoned(key, intent, now)):
                continue
            with failures.guard('recovering interrupted changes'):
                handled += self._roll_back_intent(hit)
        return handled

    def _roll_back_intent(self, hit):
        key = hit['_id']
        intent = hit['_source']['doc']
        # Claim it first, conditionally: whoever else holds it (its writer
        # finishing, another sweep) wins.
        source = dict(hit['_source'], doc=dict(
            intent, claimed=self._stamp_of_owner()))
        self._held[key] = 'claimed'
        try:
            try:
                claimed = self._clients.writer.index(
                    index=self._index, id=key, document=source,
                    if_seq_no=hit['_seq_no'],
                    if_primary_term=hit['_primary_term'],
                    refresh='false', require_alias=True)
            except (elasticsearch.NotFoundError,
                    elasticsearch.ConflictError):
                return 0  # finished, or taken, meanwhile
            claim = (claimed['_seq_no'], claimed['_primary_term'])
            LOG.warning('Rolling back a change interrupted in process %s '
                        'on %s', intent.get('pid'), intent.get('host'))
            for write in reversed(intent.get('writes', [])):
                if not self._still_claimed(key, claim):
                    LOG.warning('Stopped rolling back %s: another sweep '
                                'took it over', key)
                    return 0
                self.roll_back(key, write)
            try:
                self._clients.writer.delete(
                    index=self._index, id=key, if_seq_no=claim[0],
                    if_primary_term=claim[1],
                    refresh=self._refreshes.of_lone_write)
            except (elasticsearch.NotFoundError,
                    elasticsearch.ConflictError):
                pass
            return 1
        finally:
            self._held.pop(key, None)

    def _still_claimed(self, key, claim):
        hit = self._get_raw(key)
        return hit is not None and (
            hit['_seq_no'], hit['_primary_term']) == claim

    def roll_back(self, intent_key, write):
        """Give one document its content from before the change, if it
        still holds what the change wrote.

        NOTE: "still holds" is decided by the stamp alone, never by the
        content: versions are not unique (an undo or a roll-back puts an
        earlier version back, and a change run again can then write the
        same version with the same content, acknowledged this time). A
        document the change wrote carries the intent's key; any later
        write replaces it. The roll-back is conditional on the sequence
        number read, so a write that comes in between is never lost.
        """
        key = write['key']
        before = documents.from_image(write['before'])
        before_stamp = write.get('before_stamp')
        hit = self._get_raw(key)
        writer = self._clients.writer
        try:
            if write['after'] is None:
                # NOTE: a deleted document carries no stamp; absent, it is
                # what this change deleted (ids are not reused).
                if hit is None and before is not None:
                    writer.create(
                        index=self._index, id=key,
                        document=documents.source(before, before_stamp),
                        refresh=self._refreshes.of_lone_write,
                        require_alias=True)
                    LOG.info('Rolled back the deletion of %s', key)
                return
            if hit is None or hit['_source'].get(
                    documents.STAMP) != intent_key:
                return  # never written, or written again since
            if before is None:
                writer.delete(index=self._index, id=key,
                              if_seq_no=hit['_seq_no'],
                              if_primary_term=hit['_primary_term'],
                              refresh=self._refreshes.of_lone_write)
            else:
                writer.index(index=self._index, id=key,
                             document=documents.source(before, before_stamp),
                             if_seq_no=hit['_seq_no'],
                             if_primary_term=hit['_primary_term'],
                             refresh=self._refreshes.of_lone_write,
                             require_alias=True)
            LOG.info('Rolled back %s', key)
        except elasticsearch.ConflictError:
            LOG.info('Did not roll back %s: written again meanwhile', key)
