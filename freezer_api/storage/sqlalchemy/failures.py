"""What a database error means, on every SQL engine, decided in one place.

``classify`` names the kind of failure from the DB-API error SQLAlchemy
wrapped (PostgreSQL SQLSTATEs, MySQL error numbers, SQLite result codes);
``translate`` turns it into what the driver raises: ``base.LostRace`` and
``base.Reconnect`` for the retry loop of ``StorageDriver.run_atomic``,
``errors.Unavailable`` or ``errors.QueryTimeout`` for the caller.
"""

import logging

from freezer_api.storage import base
from freezer_api.storage import errors

__all__ = ['RETRY', 'DUPLICATE', 'BUSY', 'TIMEOUT', 'DISCONNECT', 'FAILED',
           'UNAVAILABLE', 'classify', 'unavailable', 'translate']

LOG = logging.getLogger(__name__)

UNAVAILABLE = 'the database is unavailable'
QUERY_TIMEOUT = ('the query ran longer than the database allows '
                 '([database] query_timeout)')

# Outcomes of classify.
RETRY = 'retry'          # lost a race: run the change again
DUPLICATE = 'duplicate'  # unique violation
BUSY = 'busy'            # SQLite stayed locked for the whole busy timeout
TIMEOUT = 'timeout'      # the query ran past [database] query_timeout
DISCONNECT = 'disconnect'  # a pooled connection was dead
FAILED = 'failed'        # anything else: server down, bad schema, ...

# PostgreSQL SQLSTATEs and MySQL error numbers meaning "lost a race".
_PG_RETRY = {'40001', '40P01', '55P03'}
_PG_DUPLICATE = {'23505'}
_MYSQL_RETRY = {1205, 1213}
_MYSQL_DUPLICATE = {1062}
# Statements stopped by their time limit: PostgreSQL query_canceled,
# MariaDB max_statement_time, MySQL max_execution_time, SQLite interrupt.
_PG_TIMEOUT = {'57014'}
_MYSQL_TIMEOUT = {1969, 3024}
_SQLITE_INTERRUPT = 9
# SQLite primary result codes of a locked database.
_SQLITE_BUSY = {5, 6}
# SQLite extended result codes of unique and primary key violations.
_SQLITE_DUPLICATE = {2067, 1555}


def classify(exc):
    """One of the outcomes above for a SQLAlchemy error, or for a DB-API
    error met outside SQLAlchemy (a raw connection's)."""
    orig = getattr(exc, 'orig', exc)
    if getattr(exc, 'connection_invalidated', False):
        return DISCONNECT
    args = getattr(orig, 'args', None)
    if args and isinstance(args[0], int):
        # NOTE: MySQL drivers raise (error number, message). Look at the
        # number first: PyMySQL 1.2+ also sets ``sqlstate``, which is too
        # coarse there (a duplicate key is the generic 23000).
        if args[0] in _MYSQL_RETRY:
            return RETRY
        if args[0] in _MYSQL_TIMEOUT:
            return TIMEOUT
        if args[0] in _MYSQL_DUPLICATE:
            return DUPLICATE
        return FAILED
    sqlstate = getattr(orig, 'sqlstate', None) or getattr(orig, 'pgcode', None)
    if sqlstate:
        if sqlstate in _PG_RETRY:
            return RETRY
        if sqlstate in _PG_TIMEOUT:
            return TIMEOUT
        if sqlstate in _PG_DUPLICATE:
            return DUPLICATE
        return FAILED
    code = getattr(orig, 'sqlite_errorcode', None)
    if code is not None:
        if (code & 0xff) in _SQLITE_BUSY:
            return BUSY
        if (code & 0xff) == _SQLITE_INTERRUPT:
            return TIMEOUT
        if code in _SQLITE_DUPLICATE:
            return DUPLICATE
        return FAILED
    return FAILED


def unavailable(what, exc):
    """The error to raise for ``exc`` met while ``what``, when it is no
    race to run again: QueryTimeout or Unavailable."""
    # NOTE: the original error may hold SQL, parameters and hosts: it goes
    # to the log only, never into the message.
    outcome = classify(exc)
    if outcome == TIMEOUT:
        LOG.warning('Query stopped at its time limit while %s', what)
        return errors.QueryTimeout(QUERY_TIMEOUT)
    if outcome == BUSY:
        LOG.warning('SQLite database stayed locked while %s', what)
        return errors.Unavailable(UNAVAILABLE)
    LOG.warning('Database error while %s: %s', what, exc)
    return errors.Unavailable(UNAVAILABLE)


def translate(what, exc, optimistic=False, may_reconnect=False):
    """The error to raise for ``exc`` met while ``what``.

    ``optimistic``: a lost race or a duplicate is ``LostRace`` (writers
    that do not take turns). ``may_reconnect``: a dead connection is
    ``Reconnect`` (nothing was committed on it and the work may run again
    on a new one).
    """
    outcome = classify(exc)
    if outcome in (RETRY, DUPLICATE) and optimistic:
        LOG.debug('Change lost a race while %s: %s', what, exc)
        return base.LostRace()
    if outcome == DISCONNECT and may_reconnect:
        LOG.info('Database connection lost while %s; running it again on '
                 'a new one: %s', what, exc)
        return base.Reconnect()
    return unavailable(what, exc)
