"""Cursors on SQL (see ``StorageDriver.lease_cursor``): one row per
``(name, key)`` in ``cursors``.

A lease or an advance is one read and one conditional ``UPDATE``
(``WHERE holder = ? AND lease_until = ?``, what was read) in a change of
its own: of two writers that read the same row, the second matches
nothing and its change runs again (``LostRace``), so two processes never
both take a lease. The first lease of a key inserts the row; two racing
first writers meet on the primary key, and the loser runs again and sees
the winner's row.
"""

from typing import Any

import sqlalchemy as sa

from freezer_api.storage import base
from freezer_api.storage.sqlalchemy import models

__all__ = ['cursors', 'DriverCursors']

NAME_LENGTH = 64

cursors = sa.Table(
    'cursors', models.metadata,
    sa.Column('name', models.exact_string(NAME_LENGTH), primary_key=True),
    sa.Column('cursor_key', models.exact_string(models.OWNER_LENGTH),
              primary_key=True),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('holder', models.exact_string(models.OWNER_LENGTH),
              nullable=False),
    sa.Column('lease_until', sa.BigInteger(), nullable=False),
    **models.TABLE_ARGS,
)

_COLUMNS = (cursors.c.position, cursors.c.holder, cursors.c.lease_until)


def _where(name, key):
    return (cursors.c.name == name, cursors.c.cursor_key == key)


def _read_row(conn, name, key):
    return conn.execute(sa.select(*_COLUMNS).where(*_where(name, key))
                        ).first()


def _set(conn, name, key, row, **values):
    """Update the row read as ``row``; False when it changed since."""
    return conn.execute(sa.update(cursors).where(
        *_where(name, key), cursors.c.holder == row[1],
        cursors.c.lease_until == row[2]).values(**values)).rowcount == 1


class DriverCursors:
    """The cursor calls of ``SQLAlchemyDriver`` (a mixin: it uses the
    driver's ``_read`` and ``atomic``)."""

    # what SQLAlchemyDriver provides
    _read: Any
    atomic: Any

    def get_cursor(self, name, key):
        row = self._read('reading a cursor',
                         lambda conn: _read_row(conn, name, key))
        return None if row is None else base.Cursor(name, key, *row)

    def lease_cursor(self, name, key, holder, now, until):
        def change(txn):
            conn = txn._conn
            with txn._guard('leasing a cursor'):
                row = _read_row(conn, name, key)
                if row is None:
                    # a racing first writer makes this a duplicate key
                    conn.execute(sa.insert(cursors).values(
                        name=name, cursor_key=key, position=0,
                        holder=holder, lease_until=until))
                    return base.Cursor(name, key, 0, holder, until)
                if row[1] not in ('', holder) and row[2] > now:
                    return None
                moved = _set(conn, name, key, row, holder=holder,
                             lease_until=until)
            if not moved:
                raise txn.lost_race()
            return base.Cursor(name, key, row[0], holder, until)

        return self.atomic(change)

    def advance_cursor(self, name, key, holder, position, until):
        def change(txn):
            conn = txn._conn
            with txn._guard('advancing a cursor'):
                row = _read_row(conn, name, key)
                if row is None or row[1] != holder:
                    return False
                moved = _set(conn, name, key, row,
                             position=max(position, row[0]),
                             holder=holder if until else '',
                             lease_until=until)
            if not moved:
                raise txn.lost_race()
            return True

        return self.atomic(change)
