"""The storage driver interface.

A driver stores and queries JSON documents of the ``KINDS``. It holds no
business rules: ownership, validation and state machines live in
``freezer_api.core``, which reaches the store only through this interface.
Every driver passes the contract suite in ``tests/storage/contract.py``.

Identity of documents
    Each document has an ``id`` chosen by the core. For ``clients`` the id is
    the caller's ``client_id`` and is unique within a project; for every
    other kind it is unique across the whole store.

Scope
    Reads and writes name a ``Scope``. A document is inside the scope when its
    project matches (``project_id=None`` means every project) and, when the
    scope names a user, its ``user_id`` matches too. Documents outside the
    scope behave exactly as if they did not exist.

Versions
    Every document carries an integer version, 1 on creation and incremented
    by every write. Writes inside a transaction are conditional on the
    version that was read, so concurrent changes are never lost.
"""

import abc
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any, ContextManager, TypeVar

from freezer_api.storage import errors
from freezer_api.storage.query import Query


__all__ = ['KINDS', 'PROJECT_UNIQUE_KINDS', 'MAX_LIST_LIMIT', 'Scope',
           'Record', 'Cursor', 'Attempt', 'LostRace', 'Contended',
           'Reconnect', 'IdTaken',
           'Transaction', 'StorageDriver', 'backoff']

KINDS = ('backups', 'clients', 'jobs', 'actions', 'sessions', 'runs',
         'presence', 'job_health')

# Kinds whose ids are unique per project rather than across the store.
PROJECT_UNIQUE_KINDS = frozenset({'clients'})

# The prev_hash of the first audit record of a project.
AUDIT_GENESIS = '0' * 64

# Drivers must support at least this page size and any offset.
MAX_LIST_LIMIT = 1000

T = TypeVar('T')

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which documents a caller may see: a project, optionally one user."""

    project_id: str | None
    user_id: str | None = None

    def contains(self, project_id: str, user_id: str) -> bool:
        return ((self.project_id is None or self.project_id == project_id)
                and (self.user_id is None or self.user_id == user_id))


@dataclasses.dataclass(frozen=True)
class Record:
    """A stored document and its bookkeeping."""

    kind: str
    id: str
    project_id: str
    user_id: str
    version: int
    created_at: int  # microseconds since the epoch, set by the core
    doc: dict[str, Any]

    @classmethod
    def made(cls, kind, id, project_id, user_id, version, created_at,
             doc) -> 'Record':
        """The same Record, made for a page of a list.

        PERF: the frozen dataclass's ``__init__`` sets each field through
        ``object.__setattr__`` (3.8 us a record here, against 0.6 this
        way), and a coverage read of 10 000 jobs makes 20 000 records.
        """
        record = object.__new__(cls)
        record.__dict__.update(
            kind=kind, id=id, project_id=project_id, user_id=user_id,
            version=version, created_at=created_at, doc=doc)
        return record


@dataclasses.dataclass(frozen=True)
class Cursor:
    """A named position kept in the store, and its lease (see
    ``StorageDriver.lease_cursor``)."""

    name: str       # at most 64 characters
    key: str        # at most 128 characters
    position: int
    holder: str     # '' when nobody holds it; at most 128 characters
    until: int      # when the holder's lease ends (microseconds)


class LostRace(Exception):
    """An attempt lost a race with another writer: run the change again."""


class Contended(LostRace):
    """Another writer committed to a document between this attempt's read
    and its write: the change is sound, only late. Re-runs of such a
    change are bounded by time (``StorageDriver.contention_timeout``),
    never by the count of attempts, so that a change without a condition
    of its own is never refused because others write the same document.

    ``spot`` names what was contended, in the engine's own terms (it comes
    back in ``Attempt.lost_on``), or is None.
    """

    def __init__(self, spot: Any = None):
        super().__init__()
        self.spot = spot


class Reconnect(LostRace):
    """The attempt's connection died before its commit: run the change once
    more, on a new connection."""


class IdTaken(errors.Conflict):
    """``Transaction.insert`` (or ``create``) found its id taken."""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What the retry loop tells an engine about the attempt it asks for."""

    number: int         # 1 for the first
    contended: bool     # an earlier attempt of this change lost a race
    reconnected: bool   # an earlier attempt lost its connection
    # ``Contended.spot`` of the latest attempt that lost to another
    # writer's commit (None: none did, or it named nothing)
    lost_on: Any = None
    # time.monotonic() past which a contended change is given up
    deadline: float | None = None


class Transaction(abc.ABC):
    """Reads and writes applied all together or not at all.

    Obtained only inside ``StorageDriver.atomic``. Reads return what was
    committed when they ran; writes become visible when ``atomic`` returns.
    """

    # Set by the engine when a read or write of this attempt failed: the
    # attempt can never commit, whatever the change did with the error.
    doomed: Exception | None = None

    def lost_race(self) -> LostRace:
        """Mark this attempt as beaten by another writer; return the error
        to raise."""
        self.doomed = LostRace()
        return self.doomed

    def run(self, change: Callable[['Transaction'], T],
            abort: Callable[[], None]) -> T:
        """Run ``change`` on this attempt and return its result when the
        attempt may commit; otherwise call ``abort`` (the engine's rollback)
        and raise.

        A change that swallowed one of the engine's errors still does not
        commit; one that failed after losing a race is run again.
        """
        try:
            result = change(self)
        except BaseException:
            abort()
            if isinstance(self.doomed, LostRace):
                raise self.doomed from None
            raise
        if self.doomed is not None:
            abort()
            raise self.doomed
        return result

    @abc.abstractmethod
    def get(self, kind: str, doc_id: str, scope: Scope) -> Record | None:
        """Return the document, or None when absent or outside ``scope``."""

    @abc.abstractmethod
    def insert(self, kind: str, doc_id: str, project_id: str, user_id: str,
               created_at: int, doc: dict) -> Record:
        """Add a new document with version 1.

        :raises Conflict: the id is taken (for clients: within the project),
            even by a document outside any scope the caller could see.
        """

    @abc.abstractmethod
    def update(self, record: Record, doc: dict) -> Record:
        """Replace the body of a document read in this transaction.

        The write is conditional on ``record.version``; if another writer
        got there first the driver re-runs the whole transaction.
        """

    @abc.abstractmethod
    def delete(self, record: Record) -> None:
        """Remove a document read in this transaction (same condition)."""

    def append_audit(self, project_id: str, entries: list[dict],
                     seal: Callable[[list[dict], int, str], list[dict]]
                     ) -> list[dict]:
        """Append audit records to ``project_id``'s chain, committed or
        rolled back with this transaction; return the sealed records.

        The engine reads the chain head ``(seq, hash)`` (``(0, GENESIS)``
        for a project without records), calls ``seal(entries, seq, hash)``
        and stores what it returns, each record under ``(project_id,
        seq)``, with no search terms. The head advances conditionally on
        the head that was sealed against: two writers can never append the
        same ``seq`` (the loser re-reads the head or runs again), so the
        chain never forks, whatever the number of processes.
        """
        raise NotImplementedError(
            f'{type(self).__name__} keeps no audit trail')


class StorageDriver(abc.ABC):
    """One storage engine. Constructed with the service configuration."""

    # How many attempts a change gets before ``atomic`` gives up, and the
    # backoff between them (seconds; see ``backoff``). Engines set these
    # from their configuration. A change that keeps losing to other
    # writers' commits (``Contended``) is run again for up to
    # ``contention_timeout`` seconds instead, however many attempts that
    # takes.
    max_attempts = 3
    backoff_base = 0.005
    backoff_cap = 0.2
    contention_timeout = 30.0
    # True for an engine that re-runs a contended change only in its turn
    # with the other writers (``Attempt.lost_on``): no backoff before it.
    waits_in_turn = False

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def get(self, kind: str, doc_id: str, scope: Scope) -> Record:
        """Return one document.

        :raises NotFound: absent or outside ``scope``.
        """

    @abc.abstractmethod
    def list(self, kind: str, scope: Scope, query: Query, limit: int,
             offset: int) -> list[Record]:
        """Return the documents in ``scope`` matching ``query``.

        Ordered by ``created_at`` then ``id``; at most ``limit`` (up to
        ``MAX_LIST_LIMIT``) starting at ``offset``. Filtering and paging are
        done by the engine, never by loading every document.
        """

    def count(self, kind: str, scope: Scope, query: Query) -> int:
        """Return how many documents in ``scope`` match ``query``.

        The default pages through ``list``, reading every match; an engine
        that can count on its own should.
        """
        total = 0
        while True:
            page = self.list(kind, scope, query, MAX_LIST_LIMIT, total)
            total += len(page)
            if len(page) < MAX_LIST_LIMIT:
                return total

    def create(self, kind: str, doc_id: str, project_id: str, user_id: str,
               created_at: int, doc: dict) -> Record:
        """Store a new document (as ``Transaction.insert``, on its own)."""
        with self.preparing(doc):
            return self.run_atomic(
                lambda txn: txn.insert(kind, doc_id, project_id, user_id,
                                       created_at, doc),
                rerun_on_collision=False)

    def preparing(self, doc: dict) -> ContextManager[None]:
        """While in this context, ``doc`` is about to be inserted as it is
        (not changed before): an engine may encode it ahead, outside of
        any transaction and lock. Nothing by default."""
        return contextlib.nullcontext()

    def delete(self, kind: str, doc_id: str, scope: Scope) -> None:
        """Remove one document (a transaction of its own).

        :raises NotFound: absent or outside ``scope``.
        """
        def change(txn):
            record = txn.get(kind, doc_id, scope)
            if record is None:
                raise errors.NotFound(f'{kind} {doc_id!r} not found')
            txn.delete(record)

        self.atomic(change)

    def atomic(self, change: Callable[[Transaction], T]) -> T:
        """Run ``change`` in a transaction and return its result.

        ``change`` may run several times when it loses a race with another
        writer, so it must have no effect other than through the
        transaction. Exceptions it raises abort the transaction and
        propagate unchanged.

        :raises Conflict: still losing races after the configured retries.
        """
        return self.run_atomic(change)

    def run_atomic(self, change: Callable[[Transaction], T],
                   rerun_on_collision: bool = True) -> T:
        """The retry loop of every engine: ``attempt`` until one commits.

        An attempt that lost a race is run again after a backoff: while
        it lost to another writer's commit (``Contended``), until
        ``contention_timeout`` seconds after the first such loss; any
        other lost race counts, at most ``max_attempts`` such losses.
        One whose connection died is run once more at once. One whose
        insert found its id taken is run once more (when
        ``rerun_on_collision`` and the engine can lose such a race): the
        id may have been taken by a racing writer, and the re-run sees the
        winner; a second collision goes through.
        """
        number = lost = 0
        collided = contended = reconnected = False
        lost_on = deadline = None
        while True:
            number += 1
            try:
                return self.attempt(
                    change, Attempt(number, contended, reconnected,
                                    lost_on, deadline))
            except Reconnect:
                reconnected = True
            except Contended as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.contention_timeout
                if now >= deadline:
                    LOG.warning('Change still losing to other writers after '
                                '%d attempts in %.0f s', number,
                                self.contention_timeout)
                    raise self._gave_up() from None
                contended = True
                lost_on = exc.spot
                if not self.waits_in_turn:
                    backoff(number, self.backoff_base, self.backoff_cap)
            except LostRace:
                lost += 1
                if lost >= self.max_attempts:
                    LOG.warning('Change still conflicting after %d attempts',
                                number)
                    raise self._gave_up() from None
                contended = True
                lost_on = None
                backoff(number, self.backoff_base, self.backoff_cap)
            except IdTaken:
                if (collided or not rerun_on_collision
                        or not self.races_on_insert
                        or number >= self.max_attempts):
                    raise
                collided = True

    @staticmethod
    def _gave_up() -> errors.Conflict:
        return errors.Conflict('the change kept conflicting with concurrent '
                               'writers; try again')

    @property
    def races_on_insert(self) -> bool:
        """Whether two writers can both see an id free and race to insert
        it (False where writers take turns)."""
        return True

    @abc.abstractmethod
    def attempt(self, change: Callable[[Transaction], T],
                attempt: Attempt) -> T:
        """Run ``change`` once in a new transaction and commit it.

        :raises LostRace: another writer won; ``atomic`` runs it again.
        :raises Reconnect: the connection died before the commit.
        :raises IdTaken: an insert found its id taken.
        """

    # The audit trail (see Transaction.append_audit). Records are JSON
    # objects with at least project_id, seq, at (microseconds), hash.

    def list_audit(self, project_id: str | None, since: int | None,
                   until: int | None, limit: int,
                   offset: int) -> Sequence[dict]:
        """Audit records of one project (every project for None) with
        ``since <= at < until`` (either bound may be None).

        One project's records come by ``seq``; every project's by ``at``,
        then project and ``seq``. Paging as in ``list``.
        """
        raise NotImplementedError

    def audit_chain(self, project_id: str, after_seq: int,
                    limit: int) -> Sequence[dict]:
        """At most ``limit`` records of a project with ``seq >
        after_seq``, by ``seq`` (what verification and re-sending walk)."""
        raise NotImplementedError

    def audit_head(self, project_id: str) -> tuple[int, str] | None:
        """``(seq, hash)`` of the project's newest record, as the head
        that writers advance says (None: no chain), so that a verification
        notices records removed from the end."""
        raise NotImplementedError

    def audit_projects(self) -> Sequence[str]:
        """The projects that have a chain, sorted."""
        raise NotImplementedError

    def purge_audit(self, before: int) -> int:
        """Remove the records with ``at < before``; return how many.
        Chain heads stay, so later records keep chaining. Event claims
        older than ``before`` go too."""
        raise NotImplementedError

    def claim_event(self, event_id: str, at: int) -> bool:
        """Record that the event ``event_id`` (at most 128 characters)
        occurred; True for the first claim of that id on the whole store,
        False for every later one, from any process."""
        raise NotImplementedError

    # Cursors: named positions with a lease, for work that several
    # processes share (what they mean is the caller's business).

    def get_cursor(self, name: str, key: str) -> Cursor | None:
        """The cursor ``(name, key)`` as stored now; None when absent."""
        raise NotImplementedError

    def lease_cursor(self, name: str, key: str, holder: str, now: int,
                     until: int) -> Cursor | None:
        """Give ``holder`` the cursor's lease until ``until``, and return
        the cursor as leased (an absent cursor is created at position 0).

        The lease is given when nobody holds it, when its lease ended
        (``until <= now``) or when ``holder`` holds it already (a renewal);
        None, with nothing changed, while another holder's lease runs. Of
        several processes asking at once, at most one gets it.
        """
        raise NotImplementedError

    def advance_cursor(self, name: str, key: str, holder: str,
                       position: int, until: int) -> bool:
        """Move the cursor to ``position`` (never backwards) and set its
        lease to end at ``until`` (0: give it up), if ``holder`` holds it;
        False, with nothing changed, when it does not (another process
        took the lease after it ended)."""
        raise NotImplementedError

    @abc.abstractmethod
    def ping(self) -> None:
        """Check the store answers.

        :raises Unavailable: it does not.
        """

    # Schema management: what freezer-manage and the first start call. Every
    # operation is declared here, with a default where it may not apply to
    # an engine, so callers never probe a driver for a method.

    @abc.abstractmethod
    def upgrade_schema(self, kinds: Sequence[str] | None = None) -> None:
        """Create or migrate tables, indexes or mappings to this release.

        ``kinds`` (default: all) names the kinds whose mappings to update,
        for an engine that keeps one per kind (Elasticsearch); an engine
        whose schema migrates as a whole (SQL) upgrades all of it anyway.
        """

    @abc.abstractmethod
    def drop_schema(self) -> None:
        """Remove everything this driver created, data included."""

    @abc.abstractmethod
    def describe_schema(self, kinds: Sequence[str] | None = None) -> dict:
        """Return a JSON-able description of what exists in the store.

        ``kinds`` narrows the description to those kinds where the engine
        describes each kind apart (Elasticsearch mappings); others describe
        the whole schema.
        """

    def schema_exists(self) -> bool | None:
        """Tell whether the store already holds this driver's schema.

        None (the default) means the driver does not tell: freezer-manage
        then upgrades without asking (migrations keep the data) and asks
        before removing. A driver answering True or False makes it ask
        before updating an existing schema and say there is nothing to
        remove when there is none.
        """
        return None

    def update_settings(self) -> bool:
        """Apply the configured settings of an existing store (those that
        can change after creation) and return True; return False when the
        engine has no such settings (the default)."""
        return False

    @property
    def embedded(self) -> bool:
        """True for a store private to this host that creates itself.

        ``load_driver`` upgrades an embedded store's schema on first use;
        shared stores are managed with ``freezer-manage``.
        """
        return False

    def close(self) -> None:
        """Release connections. The driver is unusable afterwards."""


def backoff(attempt: int, base: float, cap: float) -> None:
    """Sleep before re-running a change that lost a race: a random part of
    ``base`` doubled per attempt, at most ``cap`` seconds (full jitter)."""
    ceiling = min(cap, base * (2 ** (min(attempt, 32) - 1)))
    # jitter between retries, not a secret
    time.sleep(random.uniform(0, ceiling))  # nosec B311
