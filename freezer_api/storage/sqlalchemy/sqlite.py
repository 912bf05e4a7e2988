"""What the driver does on SQLite only.

Connections: WAL, ``busy_timeout``, foreign keys, transactions begun by
the driver (``BEGIN IMMEDIATE`` for writers) and a statement deadline
(``Deadline``: SQLite has no statement timeout of its own).

Writers, even in different processes, take turns on the file: they queue
on a lock file (``<database>.writer``, see ``WriterQueue``) before they
begin, and a FIFO beside it (``<database>.writer.bell``) wakes them.
SQLite's own wait for a locked file polls with sleeps growing to 100 ms,
during which other writers keep taking the file, so under load a writer
could wait far longer than the others. After a writer's turn the
queue copies the WAL back now and then (``checkpoint``), and refreshes
the planner's statistics (``analyze``).
"""

import contextlib
import fcntl
import logging
import os
import select
import stat
import threading
import time
import weakref

from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from freezer_api.storage import errors
from freezer_api.storage.sqlalchemy import failures

__all__ = ['Deadline', 'WriterQueue', 'configure', 'private_files',
           'time_limit', 'analyze', 'schema_lock', 'WRITE_OPTIONS',
           'ANALYZE_EVERY', 'ANALYZE_ROWS']

LOG = logging.getLogger(__name__)

# Execution option naming how a transaction begins (see configure).
BEGIN_OPTION = 'freezer_sqlite_begin'
WRITE_OPTIONS = {BEGIN_OPTION: 'IMMEDIATE'}
# Where a pooled connection keeps its Deadline (connection info).
DEADLINE_INFO = 'freezer_deadline'

# SQLite statistics are refreshed at this process's first WAL checkpoint
# and then every ANALYZE_EVERY checkpoints (CHECKPOINT_EVERY writes each),
# sampling ANALYZE_ROWS rows per index.
ANALYZE_EVERY = 64
ANALYZE_ROWS = 1000

# Bytes a WAL file is cut back to when SQLite starts it over.
WAL_LIMIT = 64 * 1024 * 1024

# SQLite virtual machine steps between two looks at the clock.
_PROGRESS_STEPS = 10000

# The database holds job definitions and credentials references: only the
# service's user may read it. SQLite gives -wal and -shm files the mode of
# the database file.
PRIVATE_FILE = 0o600
_COMPANIONS = ('', '-wal', '-shm', '-journal')


def private_files(path):
    """Create the SQLite file ``path`` 0600; make existing ones so."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                     PRIVATE_FILE)
    except FileExistsError:
        pass
    except OSError as exc:
        # NOTE: SQLite reports what it cannot open, in its own words.
        LOG.debug('Cannot create %s: %s', path, exc)
    else:
        os.close(fd)
    for suffix in _COMPANIONS:
        name = path + suffix
        try:
            mode = os.stat(name).st_mode & 0o777
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
                LOG.warning('%s was readable by other users (mode %o); '
                            'it is now %o', name, mode, mode & 0o700)
        except FileNotFoundError:
            pass
        except OSError as exc:
            LOG.warning('Cannot restrict the permissions of %s: %s',
                        name, exc)


class Deadline:
    """When the SQLite statement under way must stop (None: never).

    One per pooled SQLite connection, read by its progress handler.
    """

    __slots__ = ('at',)

    def __init__(self):
        self.at = None

    def __call__(self):
        at = self.at
        return 1 if at is not None and time.monotonic() > at else 0


def configure(engine, busy_timeout, memory):
    """Set up every connection of ``engine`` (see the module's doc)."""

    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_conn, record):
        # NOTE: stop pysqlite from issuing BEGIN on its own, so that
        # transactions start when and how _on_begin says.
        dbapi_conn.isolation_level = None
        deadline = record.info[DEADLINE_INFO] = Deadline()
        dbapi_conn.set_progress_handler(deadline, _PROGRESS_STEPS)
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f'PRAGMA busy_timeout = {int(busy_timeout)}')
            cursor.execute('PRAGMA foreign_keys = ON')
            if not memory:
                cursor.execute('PRAGMA journal_mode = WAL')
                cursor.execute('PRAGMA synchronous = NORMAL')
                # NOTE: checkpoints are run by WriterQueue.wrote, outside
                # of the writers' turns.
                cursor.execute('PRAGMA wal_autocheckpoint = 0')
                # a WAL started over after a burst shrinks back to this
                cursor.execute(f'PRAGMA journal_size_limit = {WAL_LIMIT}')
        finally:
            cursor.close()

    @event.listens_for(engine, 'begin')
    def _on_begin(conn):
        mode = conn.get_execution_options().get(BEGIN_OPTION)
        conn.exec_driver_sql('BEGIN IMMEDIATE' if mode == 'IMMEDIATE'
                             else 'BEGIN')


@contextlib.contextmanager
def time_limit(info, seconds):
    """Stop the statements run meanwhile on the pooled connection whose
    ``info`` this is after ``seconds`` (0 or None: no limit)."""
    deadline = info.get(DEADLINE_INFO)
    if deadline is None or not seconds:
        yield
        return
    deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        deadline.at = None


def analyze(execute):
    """Refresh SQLite's statistics of the tables and indexes, running the
    SQL through ``execute``.

    PERF: without them SQLite's planner cannot tell a client's ten jobs
    from the million of its project: it walks the project in list order to
    find them (130 ms at 200 000 jobs instead of 3 ms). PostgreSQL and
    MySQL keep their statistics themselves; SQLite only on ANALYZE.
    Sampling (``analysis_limit``) bounds its cost whatever the size.
    """
    execute(f'PRAGMA analysis_limit = {ANALYZE_ROWS}')
    execute('ANALYZE')


class WriterQueue:
    """Writers to one SQLite file, in this process and the others, queue here.

    PERF: a thread lock orders the writers of this process; an ``flock`` on
    a lock file orders the processes. A waiting writer is woken as soon as
    the lock is free, instead of sleeping in SQLite's busy handler. The
    wait is bounded by ``sqlite_busy_timeout``, as SQLite's own is. Only
    writers take part: readers never wait (WAL).

    A blocking ``flock`` cannot be given a timeout, so waiting writers of
    other processes are woken by a ``_Doorbell`` that each writer rings as
    it lets the lock go. Polling with ``LOCK_NB`` and growing sleeps
    instead left the file free while waiters slept (1.2 ms a PATCH under
    load, in ``bench``).

    ``raw_connection`` gives a pooled DB-API connection, for checkpoints.
    """

    # Write transactions of this process between two WAL checkpoints.
    CHECKPOINT_EVERY = 64
    # Pages in the WAL from which a checkpoint has it started over (32
    # MiB of 4 KiB pages; the WAL index is searched in blocks of 4 096).
    RESTART_FRAMES = 8192

    def __init__(self, path, timeout, raw_connection):
        self._path = path
        self._timeout = timeout
        self._raw_connection = raw_connection
        self._threads = threading.Lock()
        self._handle = None
        self._bell: _NoDoorbell | None = None
        self._pid = None
        self._writes = 0
        self._checkpoints = 0
        # checkpoints after which the WAL could start over
        self.restarts = 0

    def wrote(self):
        """Count a write, after its turn; checkpoint when one is due."""
        self._writes += 1
        if self._writes >= self.CHECKPOINT_EVERY:
            self._writes = 0
            self.checkpoint()

    def checkpoint(self):
        """Copy the WAL back into the database file, and have the next
        writer start the WAL over.

        PERF: SQLite's automatic checkpoint runs inside the commit that
        fills the WAL, while that writer holds the file: every writer
        waited for its page copies and fsyncs. Here the copy runs after
        the writer's turn, passive, never blocking writers. But SQLite
        starts a WAL over only once a checkpoint has copied all of it,
        which a passive one never does while others keep reading and
        writing (it cannot copy past the oldest reader's snapshot): under
        steady load the WAL grew without end (3.8 GB beside a 130 MB
        database after five minutes of ``bench.audit_http``), and every
        read searched its ever longer index (a create's CPU grew from
        1.6 to 3.2 ms). So once the WAL holds ``RESTART_FRAMES``, the
        pages written meanwhile are copied in the writers' turn
        (``RESTART``), without waiting for readers. Not at every
        checkpoint: its fsync holds every writer (3 ms, at times 30 ms,
        on the test machine).
        """
        try:
            raw = self._raw_connection()
        except sa_exc.SQLAlchemyError as exc:
            LOG.debug('No connection for a WAL checkpoint: %s', exc)
            return
        try:
            sqlite_conn = raw.driver_connection
            # NOTE: outside any transaction (isolation_level is None).
            _, frames, _ = sqlite_conn.execute(
                'PRAGMA wal_checkpoint(PASSIVE)').fetchone()
            if frames >= self.RESTART_FRAMES:
                with self.turn():
                    self._restart(sqlite_conn)
            self._checkpoints += 1
            if self._checkpoints % ANALYZE_EVERY == 1:
                # NOTE: in the writers' turn: it writes sqlite_stat1.
                with self.turn():
                    analyze(sqlite_conn.execute)
        except Exception as exc:  # sqlite3.Error, whatever the module
            LOG.debug('WAL checkpoint failed: %s', exc)
        finally:
            raw.close()

    def _restart(self, sqlite_conn):
        """Copy the rest of the WAL; if no reader holds an older
        snapshot, the next writer starts the WAL over. In the writers'
        turn, so no writer adds to it meanwhile."""
        # NOTE: a reader of an older snapshot makes it give up at once
        # (busy), rather than hold every writer until that read ends;
        # the next checkpoint tries again.
        sqlite_conn.execute('PRAGMA busy_timeout = 0')
        try:
            busy, _, _ = sqlite_conn.execute(
                'PRAGMA wal_checkpoint(RESTART)').fetchone()
        finally:
            sqlite_conn.execute(
                f'PRAGMA busy_timeout = {round(self._timeout * 1000)}')
        self.restarts += 0 if busy else 1

    def _file(self):
        """This process's lock file and doorbell."""
        # NOTE: an flock belongs to the open file description, which a
        # forked child shares: every process opens its own.
        pid = os.getpid()
        if self._handle is None or self._pid != pid:
            self.close()
            self._handle = os.fdopen(os.open(
                self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND,
                PRIVATE_FILE), 'a+')
            self._pid = pid
            self._bell = _open_doorbell(self._path + '.bell')
            # NOTE: closed with the queue, also when nobody calls close().
            self._closer = weakref.finalize(self, _close, self._handle,
                                            self._bell)
        return self._handle, self._bell

    def close(self):
        # NOTE: in a forked child this closes only the child's descriptor;
        # the parent keeps its own, and its lock.
        if self._handle is not None:
            self._closer()
            self._handle = None

    @contextlib.contextmanager
    def turn(self):
        deadline = time.monotonic() + self._timeout
        if not self._threads.acquire(timeout=self._timeout):
            raise errors.Unavailable(failures.UNAVAILABLE)
        try:
            try:
                handle, bell = self._file()
            except OSError as exc:
                LOG.warning('Cannot open the SQLite writer lock %s: %s',
                            self._path, exc)
                yield
                return
            if not _try_lock(handle):
                _wait_for_lock(handle, bell, deadline)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                bell.ring()
        finally:
            self._threads.release()


def _try_lock(handle):
    """Take the lock file if it is free; whether taken."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_for_lock(handle, bell, deadline):
    """Take the lock file once another process lets it go, by
    ``deadline`` (else Unavailable)."""
    while True:
        # NOTE: rings from before this look are dropped, then the lock is
        # looked at: a release in between is seen
        bell.silence()
        if _try_lock(handle):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            LOG.warning('SQLite database stayed locked for the whole busy '
                        'timeout')
            raise errors.Unavailable(failures.UNAVAILABLE)
        bell.wait(left)


def _close(handle, bell):
    bell.close()
    handle.close()


# What a Linux pipe holds by default.
PIPE_BYTES = 64 * 1024


class _NoDoorbell:
    """In place of a doorbell that could not be had: nothing rings, and a
    waiter looks at the lock every ``FALLBACK`` seconds."""

    FALLBACK = 0.01

    def close(self):
        pass

    def ring(self):
        pass

    def silence(self):
        pass

    def wait(self, timeout):
        time.sleep(min(max(timeout, 0.0), self.FALLBACK))


class _Doorbell(_NoDoorbell):
    """A FIFO beside the lock file: a writer that lets the lock go writes a
    byte to it, which wakes the writers of other processes waiting for
    it (``select``, with their timeout). A wake-up can be lost (another
    waiter read the byte first): the holder that waiter then saw rings in
    its turn, and a waiter looks at the lock every ``FALLBACK`` seconds
    anyway (a holder that died, or one that does not ring, rings no bell).
    """

    def __init__(self, fd):
        self._fd = fd

    def close(self):
        os.close(self._fd)

    def ring(self):
        try:
            os.write(self._fd, b'.')
        except BlockingIOError:  # full: nobody listens, it rings already
            pass

    def silence(self):
        """Drop the rings of lock releases already seen."""
        # NOTE: a whole pipe's worth at once: with nobody waiting, rings
        # pile up to the pipe's 64 KiB
        try:
            while os.read(self._fd, PIPE_BYTES):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout):
        select.select([self._fd], [], [],
                      min(max(timeout, 0.0), self.FALLBACK))


def _open_doorbell(path):
    """The doorbell at ``path`` (made if missing), or a ``_NoDoorbell``
    when it cannot be had or something other than a FIFO is there (left
    as it is)."""
    try:
        try:
            os.mkfifo(path, PRIVATE_FILE)
        except FileExistsError:
            pass
        # NOTE: read and write on one descriptor, never blocking (Linux
        # opens a FIFO O_RDWR without waiting for the other end).
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        LOG.warning('No SQLite writer doorbell %s (%s): waiting writers '
                    'look at the lock every %s s', path, exc,
                    _NoDoorbell.FALLBACK)
        return _NoDoorbell()
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        LOG.warning('%s is not a FIFO: waiting SQLite writers look at '
                    'the lock every %s s', path, _NoDoorbell.FALLBACK)
        return _NoDoorbell()
    return _Doorbell(fd)


@contextlib.contextmanager
def schema_lock(database):
    """Keep two processes from migrating the SQLite file ``database`` at
    once."""
    path = database + '.lock'
    try:
        handle = open(path, 'a+')
    except OSError as exc:
        LOG.warning('Cannot open schema lock %s: %s', path, exc)
        raise errors.Unavailable(failures.UNAVAILABLE) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
