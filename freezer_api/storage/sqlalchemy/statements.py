"""The driver's statements, compiled once per shape to the engine's SQL,
and the upkeep of the inverted index they search.

A search (``storage.query.Query``) becomes one SELECT on the documents
table whose conditions are subqueries on the inverted index
``<kind>_terms`` (see ``models``). Every value is a bound parameter: one
compiled statement serves every search, read or write of the same shape.
"""

import threading

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect

from freezer_api.storage import base
from freezer_api.storage import codec
from freezer_api.storage.sqlalchemy import models

__all__ = ['Prepared', 'Statements', 'get_values', 'record_columns',
           'order']

# Compiled statements kept per engine (see Statements).
MAX_PREPARED = 512
# Documents whose index rows are kept per engine (see TermSets).
MAX_TERM_SETS = 256

_LIKE_ESCAPE = '/'


class Prepared:
    """A statement compiled once to this engine's own SQL.

    PERF: building a SQLAlchemy statement, computing its cache key and
    running it through a Connection cost about 0.45 ms per GET of one
    document, ten times the query itself. The hot statements are built
    once per shape with named parameters, compiled once per engine, and run
    as plain SQL with their values. ``python -m bench`` on SQLite (Dec
    2026): SQLAlchemy's own way (statements built per call, its compiled
    cache) cost 2-2.5x the server CPU per request on GET and poll, 1.5x on
    session cycles.
    """

    __slots__ = ('sql', 'names', 'constants')

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = (tuple(compiled.positiontup) if compiled.positional
                      else None)
        # parameters the statement fixed itself (such as LIMIT 1)
        self.constants = {name: value
                          for name, value in compiled.params.items()
                          if value is not None}

    def parameters(self, values):
        if self.constants:
            values = {**self.constants, **values}
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)


def record_columns(table):
    """The columns of a ``base.Record``, in the order ``record_of`` reads
    them."""
    return (table.c.id, table.c.project_id, table.c.user_id,
            table.c.version, table.c.created_at, table.c.doc)


def order(kind, any_project):
    """The list order: ``created_at`` then id (then pk, which is unique
    where ids are only unique per project)."""
    table = models.documents[kind]
    columns = [table.c.created_at, table.c.id]
    if kind in base.PROJECT_UNIQUE_KINDS and any_project:
        # NOTE: ids repeat across projects; without this tie-break the
        # order, hence paging, would not be stable.
        columns.append(table.c.pk)
    return columns


def get_values(doc_id, scope):
    """Parameters of ``Statements.get``; None when nothing can match."""
    values = {'doc_id': doc_id}
    if scope.project_id is not None:
        values['project_id'] = scope.project_id
    if scope.user_id is not None:
        values['user_id'] = scope.user_id
    # NOTE: no stored id holds NUL, and PostgreSQL refuses it as a
    # parameter: match nothing without sending it.
    if any('\x00' in value for value in values.values()):
        return None
    return values


def _like_escape(text):
    """``text`` matched literally inside a LIKE pattern."""
    return (text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
            .replace('%', _LIKE_ESCAPE + '%').replace('_', _LIKE_ESCAPE + '_'))


def _path_keys(path):
    """The keys a leaf at ``path`` may have: the part after any dot, or
    all of it (keys may hold dots themselves)."""
    keys = [path[i + 1:] for i, char in enumerate(path) if char == '.']
    keys.append(path)
    return keys


def _by_term(rows):
    return {(row['path'], row['key'], row['value']): row for row in rows}


class TermSets:
    """The index rows of the documents this process updated last, by
    ``(kind, pk, stored JSON text)``: a pure function of the key, so
    never stale, whatever was committed or rolled back since.

    PERF: an update turns the rows of the old document into those of the
    new one, and making a job's rows took a third of a PATCH's CPU; the
    old document is most often the one this process wrote at its last
    update (a scheduler reports its job's states in a row). Inserts are
    not kept: most documents (backups) are never changed, and their rows
    would push out those of the jobs. The rows kept are shared: nothing
    may change them.
    """

    def __init__(self, size=MAX_TERM_SETS):
        self._size = size
        self._sets: dict = {}
        self._lock = threading.Lock()

    def get(self, key):
        return self._sets.get(key)

    def put(self, key, terms):
        with self._lock:
            sets = self._sets
            sets.pop(key, None)
            if len(sets) >= self._size:
                del sets[next(iter(sets))]
            sets[key] = terms


class Statements:
    """The compiled statements of one engine, by shape."""

    def __init__(self, dialect):
        self._dialect = dialect
        self._postgresql = dialect.name == 'postgresql'
        self._sqlite = dialect.name == 'sqlite'
        self._cache = {}
        self.term_sets = TermSets()

    def run(self, conn, sql, params, many=False):
        """Run compiled SQL in the transaction of ``conn``; return its
        DB-API cursor on SQLite, SQLAlchemy's result elsewhere (both
        have ``rowcount``, ``lastrowid`` and ``fetchone()``).

        PERF: on SQLite straight on the DB-API connection: a statement
        through ``exec_driver_sql`` costs about 15 us of CPU more, in the
        write lock. Errors are wrapped as SQLAlchemy would, for the
        transaction's guard to translate. Server databases go through
        SQLAlchemy, which also notices and discards dead connections.
        """
        if not self._sqlite:
            return conn.exec_driver_sql(sql, params)
        raw = conn.connection.driver_connection
        error = self._dialect.loaded_dbapi.Error
        try:
            return (raw.executemany if many else raw.execute)(sql, params)
        except error as exc:
            raise sa_exc.DBAPIError.instance(sql, params, exc,
                                             error) from exc

    def prepared(self, key, build):
        """The compiled form of the statement ``build()`` makes for
        ``key``, a shape of statement."""
        prepared = self._cache.get(key)
        if prepared is None:
            if len(self._cache) >= MAX_PREPARED:
                # NOTE: shapes of searches are many but few are common:
                # start over rather than grow without bound.
                self._cache.clear()
            prepared = Prepared(build(), self._dialect)
            self._cache[key] = prepared
        return prepared

    def insert(self, kind):
        """Insert a document (id, project_id, user_id, version,
        created_at, doc); on PostgreSQL, return its pk, or nothing when
        the id is taken."""
        table = models.documents[kind]

        def build():
            columns: dict = {name: sa.bindparam(name) for name in (
                'id', 'project_id', 'user_id', 'version', 'created_at',
                'doc')}
            if self._postgresql:
                # NOTE: a failed INSERT would abort the whole PostgreSQL
                # transaction; ON CONFLICT keeps it usable.
                return (pg_dialect.insert(table).values(columns)
                        .on_conflict_do_nothing().returning(table.c.pk))
            return sa.insert(table).values(columns)

        return self.prepared(('insert', kind), build)

    def update(self, kind):
        """Rewrite the row ``w_pk`` if still at ``w_version``."""
        table = models.documents[kind]
        return self.prepared(('update', kind), lambda: sa.update(
            table).where(table.c.pk == sa.bindparam('w_pk'),
                         table.c.version == sa.bindparam('w_version'))
            .values(doc=sa.bindparam('new_doc'),
                    version=sa.bindparam('new_version')))

    # -- the index -------------------------------------------------------

    def write_terms(self, conn, kind, pk, doc, replace, rows=None):
        """Index ``doc``, stored in row ``pk``; ``replace`` its rows.
        ``rows``: its index rows made beforehand (any ``doc_pk``)."""
        table = models.terms[kind]
        if replace:
            conn.execute(sa.delete(table).where(table.c.doc_pk == pk))
        if rows is None:
            rows = models.term_rows(pk, doc)
        else:
            for row in rows:
                row['doc_pk'] = pk
        self._insert_terms(conn, kind, rows)

    def update_terms(self, conn, kind, pk, old_text, doc, text):
        """Turn the index rows of the document stored as ``old_text``
        into those of ``doc``, stored as ``text``.

        PERF: a PATCH or a session action changes a few leaves of a
        document; deleting and inserting only those rows spares the index
        maintenance of all the others. A leaf whose value changed (same
        path and key) is one UPDATE of its row, which keeps the row's
        table page and its ``doc_pk`` index entry: a PATCH of a job's
        status dirtied 5 pages, of which that spares 2. The old rows are
        most often kept from the last write (``TermSets``).
        """
        sets = self.term_sets
        old = sets.get((kind, pk, old_text))
        if old is None:
            old = _by_term(models.term_rows(pk, codec.loads(old_text)))
        new = _by_term(models.term_rows(pk, doc))
        sets.put((kind, pk, text), new)
        # the rows gone, by (path, key), to be paired with rows added
        gone: dict = {}
        for term in old:
            if term not in new:
                gone.setdefault(term[:2], []).append(term)
        changed, added = [], []
        for term, row in new.items():
            if term in old:
                continue
            olds = gone.get(term[:2])
            if olds:
                path, key, value = olds.pop()
                changed.append({'t_pk': pk, 't_path': path, 't_key': key,
                                't_value': value, 'n_value': row['value'],
                                'n_num': row['num'], 'n_text': row['text']})
            else:
                added.append(row)
        table = models.terms[kind]
        if changed:
            def build_change():
                return sa.update(table).where(
                    table.c.doc_pk == sa.bindparam('t_pk'),
                    table.c.path == sa.bindparam('t_path'),
                    table.c.key == sa.bindparam('t_key'),
                    table.c.value == sa.bindparam('t_value')).values(
                        value=sa.bindparam('n_value'),
                        num=sa.bindparam('n_num'),
                        text=sa.bindparam('n_text'))

            prepared = self.prepared(('terms-changed', kind), build_change)
            self.run(conn, prepared.sql,
                     [prepared.parameters(row) for row in changed],
                     many=True)
        removed = [{'t_pk': pk, 't_path': path, 't_key': key,
                    't_value': value}
                   for terms in gone.values() for (path, key, value) in terms]
        if removed:
            prepared = self.prepared(('terms-gone', kind), lambda: sa.delete(
                table).where(table.c.doc_pk == sa.bindparam('t_pk'),
                             table.c.path == sa.bindparam('t_path'),
                             table.c.key == sa.bindparam('t_key'),
                             table.c.value == sa.bindparam('t_value')))
            self.run(conn, prepared.sql,
                     [prepared.parameters(row) for row in removed],
                     many=True)
        self._insert_terms(conn, kind, added)

    def _insert_terms(self, conn, kind, rows):
        """Insert index rows (dicts of ``models.term_rows``).

        PERF: one executemany of prepared SQL; through a Core insert,
        SQLAlchemy processes the parameters of every row on its own.
        """
        if not rows:
            return
        table = models.terms[kind]
        names = tuple(rows[0])
        prepared = self.prepared(
            ('terms', kind, names), lambda: sa.insert(table).values(
                {name: sa.bindparam(name) for name in names}))
        self.run(conn, prepared.sql,
                 [prepared.parameters(row) for row in rows], many=True)

    # -- reads -------------------------------------------------------------

    def get(self, kind, scope, in_change=False, lock=False):
        """Select one document (values: ``get_values``); in a change, its
        pk first, and locked (``FOR UPDATE``) when ``lock``."""
        def build():
            table = models.documents[kind]
            columns = record_columns(table)
            if in_change:
                columns = (table.c.pk,) + columns
            stmt = sa.select(*columns).where(
                table.c.id == sa.bindparam('doc_id'))
            if scope.project_id is not None:
                stmt = stmt.where(
                    table.c.project_id == sa.bindparam('project_id'))
            if scope.user_id is not None:
                stmt = stmt.where(table.c.user_id == sa.bindparam('user_id'))
            if kind in base.PROJECT_UNIQUE_KINDS and scope.project_id is None:
                # Several projects may use this id: take the oldest.
                stmt = stmt.order_by(table.c.created_at, table.c.pk).limit(1)
            if lock:
                stmt = stmt.with_for_update()
            return stmt

        return self.prepared(('get', kind, scope.project_id is not None,
                              scope.user_id is not None, in_change, lock),
                             build)

    def list(self, kind, scope, query):
        """Return the list statement and its parameter values, but for
        ``lim`` and ``off``."""
        values: dict = {'lim': None, 'off': None}
        shape = ['list', kind, scope.project_id is not None,
                 scope.user_id is not None]
        if scope.project_id is not None:
            values['project_id'] = scope.project_id
        if scope.user_id is not None:
            values['user_id'] = scope.user_id
        for prefix, terms in (('m', query.match), ('n', query.match_not)):
            term_shapes = []
            for i, term in enumerate(terms):
                values[f'{prefix}{i}f'] = models.index_form(term.field)
                values[f'{prefix}{i}v'] = models.value_form(term.value)
                keys = _path_keys(term.field) if term.is_path else ()
                for j, key in enumerate(keys):
                    values[f'{prefix}{i}k{j}'] = models.index_form(key)
                term_shapes.append((term.is_path, len(keys)))
            shape.append(tuple(term_shapes))
        for i, needle in enumerate(query.text):
            # stored text holds NUL as U+FFFD (see models.text_form)
            needle = needle.lower().replace('\x00', '\ufffd')
            if needle:
                values[f't{i}'] = '%' + _like_escape(needle) + '%'
        shape.append(tuple(bool(needle) for needle in query.text))
        for i, rng in enumerate(query.ranges):
            values[f'r{i}p'] = models.index_form(rng.path)
            if rng.low is not None:
                values[f'r{i}lo'] = float(rng.low)
            if rng.high is not None:
                values[f'r{i}hi'] = float(rng.high)
        shape.append(tuple((rng.low is not None, rng.high is not None)
                           for rng in query.ranges))
        key = tuple(shape)
        return self.prepared(key, lambda: _build_list(kind, key)), values


def _build_list(kind, key):
    """The list statement of one shape (see ``Statements.list``)."""
    _, _, has_project, has_user, match, match_not, text, ranges = key
    docs = models.documents[kind]
    idx = models.terms[kind]
    conds = []
    if has_project:
        conds.append(docs.c.project_id == sa.bindparam('project_id'))
    if has_user:
        conds.append(docs.c.user_id == sa.bindparam('user_id'))

    def term_cond(prefix, term_shape):
        is_path, keys = term_shape
        value = idx.c.value == sa.bindparam(prefix + 'v')
        if not is_path:
            return [idx.c.key == sa.bindparam(prefix + 'f'), value]
        # PERF: through the (key, value) index; the path is checked on the
        # rows it finds (see models: there is no path index).
        return [idx.c.key.in_([sa.bindparam(f'{prefix}k{j}')
                               for j in range(keys)]),
                value, idx.c.path == sa.bindparam(prefix + 'f')]

    for i, term_shape in enumerate(match):
        conds.append(docs.c.pk.in_(sa.select(idx.c.doc_pk).where(
            *term_cond(f'm{i}', term_shape))))
    for i, term_shape in enumerate(match_not):
        conds.append(~sa.exists().where(
            idx.c.doc_pk == docs.c.pk, *term_cond(f'n{i}', term_shape)))
    for i, has_needle in enumerate(text):
        where = [idx.c.doc_pk == docs.c.pk]
        if has_needle:
            where.append(idx.c.text.like(sa.bindparam(f't{i}'),
                                         escape=_LIKE_ESCAPE))
        conds.append(sa.exists().where(*where))
    for i, (low, high) in enumerate(ranges):
        where = [idx.c.path == sa.bindparam(f'r{i}p'),
                 idx.c.num.is_not(None)]
        if low:
            where.append(idx.c.num >= sa.bindparam(f'r{i}lo'))
        if high:
            where.append(idx.c.num <= sa.bindparam(f'r{i}hi'))
        conds.append(docs.c.pk.in_(sa.select(idx.c.doc_pk).where(*where)))
    return (sa.select(*record_columns(docs)).where(*conds)
            .order_by(*order(kind, any_project=not has_project))
            .limit(sa.bindparam('lim', type_=sa.BigInteger()))
            .offset(sa.bindparam('off', type_=sa.BigInteger())))
