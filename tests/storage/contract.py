"""The contract every storage driver passes.

``StorageContract`` holds each behaviour of ``freezer_api.storage.base`` once.
A test module runs it against one engine by subclassing it and providing the
``backend`` fixture: an object with

* ``make_driver(**database_options)``: a new driver on the test's store
  (several drivers may be open on it at once);
* ``factory(**database_options)``: the same as a picklable callable, for
  other processes;
* ``unreachable_driver()``: a driver whose store cannot be reached;
* ``reset()``: empty the store before a test;
* ``serialized_writers``: True when writers take turns (SQLite) so that a
  concurrent writer waits instead of making the change lose a race.

``SQLAlchemyBackend`` is that object for the SQLAlchemy driver, and
``SQLAlchemyContract`` adds the checks specific to it.
"""

import importlib
import itertools
import json
import multiprocessing
import random
import threading

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from freezer_api import conf as freezer_conf
from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage import query as q
from freezer_api.storage.base import Scope
from freezer_api.storage.query import Query
from freezer_api.storage.query import Range
from freezer_api.storage.query import Term

from .audit_contract import AuditContract
from .cursor_contract import CursorContract
from .threads import run_in_threads

SQLALCHEMY_DRIVER = 'freezer_api.storage.sqlalchemy.driver:SQLAlchemyDriver'
P1, P2 = 'project-1', 'project-2'
U1, U2 = 'user-1', 'user-2'
ALL = Scope(None)

# Words that must never reach an error message.
BACKEND_WORDS = ('select', 'insert', 'update ', 'delete from', 'sqlite',
                 'psycopg', 'postgres', 'sqlalchemy', 'operationalerror',
                 '127.0.0.1', 'connection refused', '.sqlite')


def make_conf(options):
    """A fresh ConfigOpts with freezer's options and ``options`` set.

    ``options`` maps a group name (``DEFAULT`` for the top level) to
    option values.
    """
    conf = cfg.ConfigOpts()
    freezer_conf.configure(conf)
    conf(args=[], project='freezer-api-tests', default_config_files=[],
         default_config_dirs=[])
    for group, values in options.items():
        for name, value in values.items():
            conf.set_override(name, value,
                              None if group == 'DEFAULT' else group)
    return conf


class DriverFactory:
    """Picklable: builds a driver class from configuration values."""

    def __init__(self, driver, options):
        self.driver = driver
        self.options = options

    def __call__(self):
        module, _, name = self.driver.partition(':')
        cls = getattr(importlib.import_module(module), name)
        return cls(make_conf(self.options))


class SQLAlchemyBackend:
    """The ``backend`` of the SQLAlchemy driver on one database URL."""

    def __init__(self, url, unreachable_url, serialized_writers,
                 state_path=None):
        self.url = url
        self.unreachable_url = unreachable_url
        self.serialized_writers = serialized_writers
        self.state_path = state_path

    def _options(self, url, database_options):
        options = {'database': {'connection': url, **database_options}}
        if self.state_path:
            options['DEFAULT'] = {'state_path': self.state_path}
        return options

    def factory(self, **database_options):
        return DriverFactory(SQLALCHEMY_DRIVER,
                             self._options(self.url, database_options))

    def make_driver(self, **database_options):
        return self.factory(**database_options)()

    def unreachable_driver(self):
        return DriverFactory(SQLALCHEMY_DRIVER,
                             self._options(self.unreachable_url, {}))()

    def drop_connections(self):
        """Make the server close every connection to the test's store."""
        if not self.url.startswith('postgresql'):
            return  # an embedded store has no connections to lose
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(
                    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                    'WHERE datname = current_database() '
                    'AND pid <> pg_backend_pid()'))
        finally:
            engine.dispose()

    def reset(self):
        """Delete every document left by an earlier test on this URL."""
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                existing = set(sa.inspect(conn).get_table_names())
                for kind in base.KINDS:
                    for table in (f'{kind}_terms', kind):
                        if table in existing:
                            conn.execute(sa.text(f'DELETE FROM {table}'))
                for table in ('audit_records', 'audit_heads',
                              'audit_events', 'cursors'):
                    if table in existing:
                        conn.execute(sa.text(f'DELETE FROM {table}'))
        finally:
            engine.dispose()


# -- helpers ----------------------------------------------------------------

_clock = itertools.count(1_700_000_000_000_000, 1000)


def add(driver, kind='jobs', doc_id=None, project_id=P1, user_id=U1,
        created_at=None, doc=None):
    doc_id = doc_id or f'id-{next(_clock)}'
    created_at = next(_clock) if created_at is None else created_at
    return driver.create(kind, doc_id, project_id, user_id, created_at,
                         {'name': doc_id} if doc is None else doc)


def ids(records):
    return [r.id for r in records]


def list_all(driver, kind='jobs', scope=Scope(P1), query=q.EMPTY_QUERY):
    return driver.list(kind, scope, query, base.MAX_LIST_LIMIT, 0)


def increment(kind, doc_id, scope):
    def change(txn):
        record = txn.get(kind, doc_id, scope)
        return txn.update(record, {**record.doc, 'n': record.doc['n'] + 1})
    return change


def _increment_worker(factory, doc_id, times):
    """Run in another process: add 1 to the counter ``times`` times."""
    driver = factory()
    try:
        for _ in range(times):
            driver.atomic(increment('sessions', doc_id, Scope(P1)))
    finally:
        driver.close()
    return times


def overwrite(kind, doc_id, scope, body):
    """An unconditional write (a PATCH or PUT without If-Match): whatever
    the document holds now, it becomes ``body``."""
    def change(txn):
        record = txn.get(kind, doc_id, scope)
        return txn.update(record, body)
    return change


def _overwrite_worker(factory, doc_id, name, threads, times):
    """Run in another process: ``threads`` threads sharing one driver each
    overwrite the job ``times`` times; return what they raised (as text)
    and how many writes each made."""
    driver = factory()
    done = [0] * threads

    def work(index):
        for n in range(times):
            driver.atomic(overwrite('jobs', doc_id, Scope(P1), {
                'writer': f'{name}-{index}', 'n': n}))
            done[index] += 1

    try:
        failures = run_in_threads(threads, work)
    finally:
        driver.close()
    return [repr(exc) for exc in failures], sum(done)


def assert_clean_message(exc, *secrets):
    text = str(exc).lower()
    for word in BACKEND_WORDS + tuple(s.lower() for s in secrets):
        assert word not in text, f'{word!r} leaked into {str(exc)!r}'


# -- documents for the search tests -----------------------------------------

LONG_A = 'x' * 300
LONG_B = 'x' * 299 + 'y'

SEARCH_DOCS = [
    # (id, project, created_at, doc)
    ('d00', P1, 10, {'name': 'alpha', 'size': 1, 'tags': ['a', 'b'],
                     'meta': {'size': 10, 'owner': {'name': 'Bob'}}}),
    ('d01', P1, 20, {'name': 'Beta', 'size': 1.0, 'flag': True,
                     'job_actions': [
                         {'freezer_action': {'mode': 'fs',
                                             'path': '/tmp/x'}},
                         {'freezer_action': {'mode': 'mysql'}}]}),
    ('d02', P1, 20, {'name': 'gamma', 'size': True, 'value': '1',
                     'pct': '100%', 'under_score': 'a_b'}),
    ('d03', P2, 30, {'name': 'delta', 'size': '1', 'count': 0,
                     'nested': [[1, 2], [3]], 'nothing': None}),
    ('d04', P1, 5, {'name': 'epsilon', 'size': 2.5, 'count': -3,
                    'tags': 'a', 'long': LONG_A}),
    ('d05', P2, 40, {'name': 'zeta', 'long': LONG_B, 'status': 'ACTIVE',
                     'text': 'Hello World'}),
    ('d06', P1, 40, {'name': 'eta', 'job_actions': [
        {'freezer_action': {'mode': 'fs'}, 'max_retries': 3}],
        'schedule': {'start': 100, 'end': 200}}),
    ('d07', P1, 50, {'name': 'theta', 'empty_list': [], 'empty_obj': {},
                     'a.b': 'dotted key', 'a': {'b': 'real path'}}),
    ('d08', P2, 50, {'name': 'iota', 'unicode': 'Ünïcödé ÄÖ',
                     'slash': 'a/b\\c', 'escape': '50/50'}),
    ('d09', P1, 60, {}),
    ('d10', P1, 70, {'name': 'kappa', 'size': 10 ** 20, 'float': 1e20,
                     'neg': -0.0, 'small': 0.5}),
    ('d11', P2, 70, {'name': 'lambda', 'percent': '%', 'underscore': '_',
                     'size': 1, 'list': [{'size': 7}, {'size': 'big'}]}),
    ('d12', P1, 80, {'name': 'mu', 'tags': [['deep', ['deeper']]],
                     '#hash': 'h', 'k' * 250: 'long key',
                     'status': 'active', 'note': 'true'}),
    ('d13', P1, 90, {'name': 'nu', 'meta': {'size': 12.75},
                     'schedule': {'start': 150}, 'count': 3,
                     'long': LONG_A}),
]

SEARCH_TERMS = [
    Term('size', 1), Term('size', 1.0), Term('size', True), Term('size', '1'),
    Term('size', 2.5), Term('size', 10), Term('size', 7), Term('size', 'big'),
    Term('meta.size', 10), Term('meta.size', 1), Term('list.size', 7),
    Term('name', 'alpha'), Term('name', 'Alpha'), Term('name', 'Bob'),
    Term('meta.owner.name', 'Bob'), Term('owner.name', 'Bob'),
    Term('mode', 'fs'), Term('mode', 'mysql'),
    Term('job_actions.freezer_action.mode', 'mysql'),
    Term('job_actions.freezer_action.mode', 'fs'),
    Term('freezer_action.mode', 'fs'), Term('max_retries', 3),
    Term('tags', 'a'), Term('tags', 'b'), Term('tags', 'deeper'),
    Term('nested', 3), Term('nested', 2), Term('nothing', None),
    Term('count', 0), Term('count', False), Term('count', -3),
    Term('flag', True), Term('flag', 1), Term('flag', 'true'),
    Term('note', True), Term('note', 'true'),
    Term('long', LONG_A), Term('long', LONG_B), Term('long', 'x' * 299),
    Term('a.b', 'real path'), Term('a.b', 'dotted key'),
    Term('b', 'real path'), Term('a.b', 'nothing'),
    Term('size', 10 ** 20), Term('float', 10 ** 20), Term('float', 1e20),
    Term('neg', 0), Term('small', 0.5), Term('status', 'active'),
    Term('status', 'ACTIVE'), Term('#hash', 'h'), Term('k' * 250, 'long key'),
    Term('value', 1), Term('value', '1'), Term('missing', 'x'),
    Term('empty_list', None), Term('percent', '%'), Term('underscore', '_'),
]

SEARCH_TEXTS = [
    'ALPHA', 'alpha', 'hello', 'WORLD', 'o w', '%', '_', 'a_b', '100%',
    '0%', '50/50', '/', '\\', 'b\\c', 'ünï', 'äö', 'ÄÖ', 'true', '2.5',
    'null', '', 'x' * 250, 'xy', 'y', '1e', '100000000000000000000',
    'tmp/x', 'nope', "'", '"', 'deeper', 'h',
]

SEARCH_RANGES = [
    Range('size', 1, 1), Range('size', 1, None), Range('size', None, 2),
    Range('size', 2, 3), Range('size', 2.5, 2.5), Range('size', 3, 2),
    Range('size'), Range('meta.size', 5, 15), Range('meta.size', 12.75),
    Range('count', -5, 0), Range('count', None, -3.5),
    Range('schedule.start', 100, 100), Range('schedule.start', 101, 160),
    Range('nested', 2, 2), Range('flag', 0, 2), Range('name', 0, 10),
    Range('start', 0, 1000), Range('list.size', 7, 7),
    Range('size', 1e19, None), Range('small', 0, 0.5),
]


def expected_ids(query, scope=ALL, docs=SEARCH_DOCS):
    rows = sorted(docs, key=lambda d: (d[2], d[0]))
    return [doc_id for doc_id, project, _, doc in rows
            if scope.contains(project, U1) and q.matches(doc, query)]


def random_queries(count, seed=7):
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        match = tuple(rng.sample(SEARCH_TERMS, rng.randint(0, 2)))
        match_not = tuple(rng.sample(SEARCH_TERMS, rng.randint(0, 2)))
        text = tuple(rng.sample(SEARCH_TEXTS, rng.randint(0, 2)))
        ranges = tuple(rng.sample(SEARCH_RANGES, rng.randint(0, 1)))
        queries.append(Query(match, match_not, text, ranges))
    return queries


class StorageContract(AuditContract, CursorContract):
    """Every behaviour of ``StorageDriver`` and ``Transaction``."""

    @pytest.fixture
    def backend(self):
        raise NotImplementedError('a test module provides the backend')

    @pytest.fixture
    def driver(self, backend):
        backend.reset()
        driver = backend.make_driver()
        driver.upgrade_schema()
        yield driver
        driver.close()

    @pytest.fixture
    def search_driver(self, driver):
        """A driver holding SEARCH_DOCS (all of user U1) as jobs."""
        def change(txn):
            for doc_id, project, created_at, doc in SEARCH_DOCS:
                txn.insert('jobs', doc_id, project, U1, created_at, doc)
        driver.atomic(change)
        return driver

    # -- create, get, list, delete ------------------------------------------

    def test_is_a_storage_driver(self, driver):
        assert isinstance(driver, base.StorageDriver)
        seen = []
        driver.atomic(lambda txn: seen.append(txn))
        assert isinstance(seen[0], base.Transaction)

    @pytest.mark.parametrize('kind', base.KINDS)
    def test_create_get_list_delete(self, driver, kind):
        doc = {'name': 'ü', 'nested': {'list': [1, 2.5, None, True, 'x']}}
        created = driver.create(kind, 'doc-1', P1, U1, 123456789, doc)
        assert created == base.Record(kind, 'doc-1', P1, U1, 1, 123456789,
                                      doc)
        assert driver.get(kind, 'doc-1', Scope(P1, U1)) == created
        assert driver.list(kind, Scope(P1, U1), q.EMPTY_QUERY, 10,
                           0) == [created]
        other = [k for k in base.KINDS if k != kind][0]
        assert driver.list(other, ALL, q.EMPTY_QUERY, 10, 0) == []
        with pytest.raises(errors.NotFound):
            driver.get(other, 'doc-1', ALL)
        driver.delete(kind, 'doc-1', Scope(P1, U1))
        with pytest.raises(errors.NotFound):
            driver.get(kind, 'doc-1', Scope(P1, U1))
        assert driver.list(kind, ALL, q.EMPTY_QUERY, 10, 0) == []
        with pytest.raises(errors.NotFound):
            driver.delete(kind, 'doc-1', ALL)

    def test_documents_round_trip_as_json(self, driver):
        doc = {'unicode': '日本語 ünï 😀', 'quote': '\'"\\', 'empty': {},
               'list': [], 'null': None, 'float': 0.1, 'big': 2 ** 62,
               'neg': -7, 'deep': [[{'x': [[1]]}]]}
        record = add(driver, doc=doc)
        assert record.doc == doc
        assert driver.get('jobs', record.id, ALL).doc == doc

    def test_get_missing_raises_not_found(self, driver):
        with pytest.raises(errors.NotFound) as info:
            driver.get('jobs', 'nope', ALL)
        assert_clean_message(info.value)

    def test_nul_characters_are_stored_and_never_break_a_lookup(self,
                                                                driver):
        # NOTE: ids arrive from URLs; PostgreSQL refuses NUL in parameters.
        doc = {'nul\x00key': 'a\x00b', 'list': ['\x00']}
        record = add(driver, doc_id='n1', doc=doc)
        assert driver.get('jobs', 'n1', ALL).doc == record.doc == doc
        for scope in (ALL, Scope('p\x00'), Scope(P1, 'u\x00')):
            with pytest.raises(errors.NotFound):
                driver.get('jobs', 'n\x001', scope)
        with pytest.raises(errors.NotFound):
            driver.delete('jobs', '\x00', ALL)
        assert driver.atomic(lambda txn: txn.get('jobs', '\x00', ALL)) is None
        assert ids(list_all(driver, query=Query(text=('a',)))) == ['n1']
        assert ids(list_all(driver, query=Query(text=('a\x00b',)))) == [
            'n1']
        assert ids(list_all(driver, query=Query(
            match=(Term('nul\x00key', 'a\x00b'),)))) == ['n1']

    def test_unknown_kind_is_rejected(self, driver):
        with pytest.raises(ValueError):
            driver.get('nonsense', 'x', ALL)

    def test_deleting_frees_the_id(self, driver):
        add(driver, doc_id='same', doc={'v': 1})
        driver.delete('jobs', 'same', Scope(P1))
        again = add(driver, doc_id='same', project_id=P2, user_id=U2,
                    doc={'v': 2})
        assert again.version == 1
        assert driver.get('jobs', 'same', ALL) == again
        assert ids(list_all(driver, query=Query(
            match=(Term('v', 1),)), scope=ALL)) == []

    # -- scope ----------------------------------------------------------------

    @pytest.mark.parametrize('kind', ['jobs', 'clients'])
    def test_scope_isolation(self, driver, kind):
        mine = add(driver, kind, 'mine', P1, U1)
        theirs = add(driver, kind, 'theirs', P1, U2)
        other = add(driver, kind, 'other', P2, U1)

        assert driver.get(kind, 'mine', Scope(P1)) == mine
        assert driver.get(kind, 'mine', Scope(P1, U1)) == mine
        assert driver.get(kind, 'mine', ALL) == mine
        assert driver.get(kind, 'mine', Scope(None, U1)) == mine
        for scope in (Scope(P2), Scope(P1, U2), Scope(P2, U1),
                      Scope(None, U2)):
            with pytest.raises(errors.NotFound):
                driver.get(kind, 'mine', scope)

        assert list_all(driver, kind, Scope(P1)) == [mine, theirs]
        assert ids(list_all(driver, kind, Scope(P1, U1))) == ['mine']
        assert ids(list_all(driver, kind, Scope(P1, U2))) == ['theirs']
        assert list_all(driver, kind, Scope(P2)) == [other]
        assert ids(list_all(driver, kind, Scope(None, U1))) == ['mine',
                                                                'other']
        assert ids(list_all(driver, kind, ALL)) == ['mine', 'theirs',
                                                    'other']
        assert list_all(driver, kind, Scope('nobody')) == []

        # Out of scope deletes do nothing.
        for scope in (Scope(P2), Scope(P1, U2)):
            with pytest.raises(errors.NotFound):
                driver.delete(kind, 'mine', scope)
        assert driver.get(kind, 'mine', ALL) == mine
        driver.delete(kind, 'theirs', Scope(P1, U2))
        driver.delete(kind, 'other', Scope(None))
        assert list_all(driver, kind, ALL) == [mine]

    def test_transaction_get_honours_scope(self, driver):
        record = add(driver, 'jobs', 'j', P1, U1)

        def change(txn):
            return [txn.get('jobs', 'j', scope) for scope in
                    (Scope(P1), Scope(P1, U1), ALL, Scope(P2), Scope(P1, U2),
                     Scope(None, U2))] + [txn.get('jobs', 'missing', ALL)]

        assert driver.atomic(change) == [record, record, record, None, None,
                                         None, None]

    def test_clients_are_unique_per_project(self, driver):
        one = add(driver, 'clients', 'host-a', P1, U1, doc={'p': 1})
        two = add(driver, 'clients', 'host-a', P2, U2, doc={'p': 2})
        with pytest.raises(errors.Conflict) as info:
            add(driver, 'clients', 'host-a', P1, U2)
        assert_clean_message(info.value)
        assert driver.get('clients', 'host-a', Scope(P1)) == one
        assert driver.get('clients', 'host-a', Scope(P2)) == two
        assert driver.get('clients', 'host-a', Scope(None, U2)) == two
        assert ids(list_all(driver, 'clients', ALL)) == ['host-a', 'host-a']
        driver.delete('clients', 'host-a', Scope(P2))
        assert driver.get('clients', 'host-a', ALL) == one
        assert list_all(driver, 'clients', ALL) == [one]

        def change(txn):
            txn.insert('clients', 'host-b', P1, U1, 1, {})
            txn.insert('clients', 'host-b', P2, U1, 1, {})
        driver.atomic(change)
        assert len(list_all(driver, 'clients', ALL)) == 3

    @pytest.mark.parametrize('kind', sorted(set(base.KINDS)
                                            - base.PROJECT_UNIQUE_KINDS))
    def test_ids_are_unique_across_projects(self, driver, kind):
        first = add(driver, kind, 'taken', P1, U1, doc={'v': 1})
        for project, user in ((P1, U1), (P1, U2), (P2, U2)):
            with pytest.raises(errors.Conflict):
                add(driver, kind, 'taken', project, user, doc={'v': 2})
        assert driver.get(kind, 'taken', ALL) == first
        assert list_all(driver, kind, ALL) == [first]

    def test_insert_conflicts_with_an_id_outside_the_scope(self, driver):
        add(driver, 'backups', 'b', P1, U1)

        def change(txn):
            assert txn.get('backups', 'b', Scope(P2)) is None
            txn.insert('backups', 'b', P2, U2, 1, {})

        with pytest.raises(errors.Conflict):
            driver.atomic(change)
        assert ids(list_all(driver, 'backups', ALL)) == ['b']

    def test_conflicting_insert_leaves_the_transaction_usable(self, driver):
        add(driver, 'jobs', 'taken')

        def change(txn):
            with pytest.raises(errors.Conflict):
                txn.insert('jobs', 'taken', P1, U1, 1, {'v': 'lost'})
            return txn.insert('jobs', 'free', P1, U1, 2, {'v': 'won'})

        driver.atomic(change)
        assert driver.get('jobs', 'free', ALL).doc == {'v': 'won'}
        assert driver.get('jobs', 'taken', ALL).doc == {'name': 'taken'}

    # -- versions and transactions -------------------------------------------

    def test_versions_start_at_one_and_increment(self, driver):
        record = add(driver, 'sessions', 's', doc={'n': 0})
        assert record.version == 1
        for expected in (2, 3, 4):
            updated = driver.atomic(increment('sessions', 's', Scope(P1)))
            assert updated.version == expected
            assert updated.doc == {'n': expected - 1}
            assert updated.created_at == record.created_at
            assert (updated.project_id, updated.user_id) == (P1, U1)
            assert driver.get('sessions', 's', ALL) == updated

    def test_atomic_returns_the_result_of_change(self, driver):
        assert driver.atomic(lambda txn: 42) == 42

    def test_transaction_sees_its_own_writes(self, driver):
        def change(txn):
            inserted = txn.insert('jobs', 'j', P1, U1, 5, {'v': 1})
            assert txn.get('jobs', 'j', Scope(P1)) == inserted
            updated = txn.update(inserted, {'v': 2})
            assert updated.version == 2
            assert txn.get('jobs', 'j', Scope(P1)) == updated
            again = txn.update(updated, {'v': 3})
            txn.delete(again)
            assert txn.get('jobs', 'j', Scope(P1)) is None
            return txn.insert('jobs', 'j', P2, U2, 6, {'v': 4})

        final = driver.atomic(change)
        assert final.version == 1
        assert driver.get('jobs', 'j', ALL) == final

    def test_atomic_is_all_or_nothing(self, driver):
        kept = add(driver, 'jobs', 'kept', doc={'v': 1})
        gone = add(driver, 'actions', 'gone', doc={'v': 1})
        boom = RuntimeError('boom')

        def change(txn):
            txn.insert('jobs', 'new', P1, U1, 1, {'v': 1})
            txn.update(txn.get('jobs', 'kept', ALL), {'v': 2})
            txn.delete(txn.get('actions', 'gone', ALL))
            txn.insert('sessions', 'new', P1, U1, 1, {'v': 1})
            raise boom

        with pytest.raises(RuntimeError) as info:
            driver.atomic(change)
        assert info.value is boom
        assert driver.get('jobs', 'kept', ALL) == kept
        assert driver.get('actions', 'gone', ALL) == gone
        for kind in ('jobs', 'sessions'):
            with pytest.raises(errors.NotFound):
                driver.get(kind, 'new', ALL)
        assert ids(list_all(driver, 'jobs', ALL, Query(
            match=(Term('v', 2),)))) == []

    def test_storage_errors_raised_by_change_propagate(self, driver):
        def change(txn):
            txn.insert('jobs', 'x', P1, U1, 1, {})
            raise errors.NotFound('not there')

        with pytest.raises(errors.NotFound, match='not there'):
            driver.atomic(change)
        assert list_all(driver, 'jobs', ALL) == []

    def test_version_mismatch_reruns_the_change(self, driver):
        add(driver, 'sessions', 's', doc={'n': 0})
        runs = []

        def change(txn):
            runs.append(1)
            record = txn.get('sessions', 's', ALL)
            if len(runs) == 1:
                txn.insert('jobs', 'side-effect', P1, U1, 1, {})
                txn.update(record, {'n': 100})
                # ``record`` is stale now, as if another writer won.
            return txn.update(record, {'n': record.doc['n'] + 1})

        result = driver.atomic(change)
        assert len(runs) == 2
        assert result.version == 2 and result.doc == {'n': 1}
        assert driver.get('sessions', 's', ALL) == result
        with pytest.raises(errors.NotFound):
            driver.get('jobs', 'side-effect', ALL)

    def test_a_swallowed_race_still_reruns(self, driver):
        add(driver, 'sessions', 's', doc={'n': 0})
        runs = []

        def change(txn):
            runs.append(1)
            record = txn.get('sessions', 's', ALL)
            if len(runs) == 1:
                txn.update(record, {'n': 100})
                try:
                    txn.update(record, {'n': 5})
                except Exception:  # a careless change
                    pass
                return 'swallowed'
            return txn.update(record, {'n': 1})

        assert driver.atomic(change).doc == {'n': 1}
        assert len(runs) == 2
        assert driver.get('sessions', 's', ALL).version == 2

    def test_concurrent_write_reruns_the_change(self, backend, driver):
        add(driver, 'sessions', 's', doc={'n': 0})
        other = backend.make_driver()
        runs = []
        threads = []

        def change(txn):
            runs.append(1)
            record = txn.get('sessions', 's', Scope(P1))
            if len(runs) == 1:
                bump = increment('sessions', 's', Scope(P1))
                if backend.serialized_writers:
                    # The other writer must wait for this change to end.
                    thread = threading.Thread(target=other.atomic,
                                              args=(bump,))
                    thread.start()
                    threads.append(thread)
                    thread.join(0.3)
                    assert thread.is_alive()
                else:
                    other.atomic(bump)
            return txn.update(record, {'n': record.doc['n'] + 1})

        try:
            driver.atomic(change)
        finally:
            for thread in threads:
                thread.join(30)
            other.close()
        final = driver.get('sessions', 's', ALL)
        assert final.doc == {'n': 2} and final.version == 3
        assert len(runs) == (1 if backend.serialized_writers else 2)

    def test_conflict_after_the_last_retry(self, backend):
        backend.reset()
        driver = backend.make_driver(max_retries=3)
        try:
            driver.upgrade_schema()
            add(driver, 'sessions', 's', doc={'n': 0})
            stale = driver.get('sessions', 's', ALL)
            driver.atomic(increment('sessions', 's', ALL))
            runs = []

            def change(txn):
                runs.append(1)
                txn.insert('jobs', f'j{len(runs)}', P1, U1, 1, {})
                return txn.update(stale, {'n': 'lost'})

            with pytest.raises(errors.Conflict) as info:
                driver.atomic(change)
            assert len(runs) == 3
            assert_clean_message(info.value)
            assert driver.get('sessions', 's', ALL).doc == {'n': 1}
            assert list_all(driver, 'jobs', ALL) == []
            with pytest.raises(errors.Conflict):
                driver.atomic(lambda txn: txn.delete(stale))
            assert driver.get('sessions', 's', ALL).version == 2
        finally:
            driver.close()

    def test_duplicate_insert_in_atomic_raises_conflict(self, driver):
        add(driver, 'actions', 'a')
        runs = []

        def change(txn):
            runs.append(1)
            txn.insert('actions', 'a', P1, U1, 1, {})

        with pytest.raises(errors.Conflict):
            driver.atomic(change)
        assert 1 <= len(runs) <= 2
        assert list_all(driver, 'actions', ALL)[0].doc == {'name': 'a'}

    def test_concurrent_increments_from_threads(self, backend, driver):
        # Heavy contention on one document: with the default retries every
        # change must still get through, and none may be lost.
        add(driver, 'sessions', 'counter', doc={'n': 0})
        workers, times = 12, 8
        drivers = [backend.make_driver(max_pool_size=workers)
                   for _ in range(2)]

        def work(index):
            for _ in range(times):
                drivers[index % 2].atomic(
                    increment('sessions', 'counter', Scope(P1)))

        failures = run_in_threads(workers, work)
        for d in drivers:
            d.close()
        assert failures == []
        final = driver.get('sessions', 'counter', ALL)
        assert final.doc == {'n': workers * times}
        assert final.version == workers * times + 1

    @pytest.mark.slow
    def test_concurrent_increments_from_processes(self, backend, driver):
        add(driver, 'sessions', 'counter', doc={'n': 0})
        processes, times = 3, 10
        factory = backend.factory(max_retries=2)
        context = multiprocessing.get_context('spawn')
        with context.Pool(processes) as pool:
            done = pool.starmap(_increment_worker,
                                [(factory, 'counter', times)] * processes,
                                chunksize=1)
        assert sum(done) == processes * times
        final = driver.get('sessions', 'counter', ALL)
        assert final.doc == {'n': processes * times}
        assert final.version == processes * times + 1

    @pytest.mark.slow
    def test_unconditional_writes_never_conflict(self, backend, driver):
        # Issue 17: writers without If-Match in several processes, each
        # with several threads, overwrite one document at once. The last
        # writer wins; none may fail for having lost races, not even with
        # a count of attempts this short (a change that lost a race to
        # another writer's commit is made to wait, never refused).
        add(driver, 'jobs', 'target', doc={'writer': 'nobody', 'n': -1})
        processes, threads, times = 3, 4, 12
        factory = backend.factory(max_retries=2)
        context = multiprocessing.get_context('spawn')
        with context.Pool(processes) as pool:
            results = pool.starmap(
                _overwrite_worker,
                [(factory, 'target', f'p{n}', threads, times)
                 for n in range(processes)], chunksize=1)
        assert [failures for failures, _ in results] == [[]] * processes
        assert sum(done for _, done in results) == processes * threads * (
            times)
        final = driver.get('jobs', 'target', ALL)
        writes = {(f'p{p}-{t}', n) for p in range(processes)
                  for t in range(threads) for n in range(times)}
        assert (final.doc['writer'], final.doc['n']) in writes
        assert final.version == processes * threads * times + 1

    # -- order and paging ----------------------------------------------------

    def test_order_is_created_at_then_id(self, driver):
        created = [('c', 30), ('b', 10), ('e', 20), ('a', 20), ('d', 20),
                   ('f', 5)]
        random.Random(3).shuffle(created)
        for doc_id, created_at in created:
            add(driver, 'backups', doc_id, created_at=created_at)
        expected = ['f', 'b', 'a', 'd', 'e', 'c']
        assert ids(list_all(driver, 'backups')) == expected
        for limit in range(0, 8):
            for offset in range(0, 8):
                page = driver.list('backups', Scope(P1), q.EMPTY_QUERY,
                                   limit, offset)
                assert ids(page) == expected[offset:offset + limit], (
                    limit, offset)

    def test_max_list_limit_and_any_offset(self, driver):
        count = base.MAX_LIST_LIMIT + 1

        def change(txn):
            for i in range(count):
                txn.insert('backups', f'b{i:05d}', P1, U1, 1000 - i % 7,
                           {'i': i})
        driver.atomic(change)
        first = driver.list('backups', Scope(P1), q.EMPTY_QUERY,
                            base.MAX_LIST_LIMIT, 0)
        rest = driver.list('backups', Scope(P1), q.EMPTY_QUERY,
                           base.MAX_LIST_LIMIT, base.MAX_LIST_LIMIT)
        assert len(first) == base.MAX_LIST_LIMIT and len(rest) == 1
        keys = [(r.created_at, r.id) for r in first + rest]
        assert keys == sorted(keys)
        assert len(set(ids(first + rest))) == count
        for offset in (5000, 2 ** 31, 2 ** 63 - 1, 2 ** 63, 10 ** 30):
            assert driver.list('backups', Scope(P1), q.EMPTY_QUERY, 10,
                               offset) == []

    # -- search --------------------------------------------------------------

    def mismatches(self, driver, queries, scopes=(ALL,)):
        """Compare the driver with the oracle; return what differs."""
        wrong = []
        for query in queries:
            for scope in scopes:
                got = ids(driver.list('jobs', scope, query,
                                      base.MAX_LIST_LIMIT, 0))
                want = expected_ids(query, scope)
                if got != want:
                    wrong.append(f'{query} in {scope}: got {got}, '
                                 f'expected {want}')
        return wrong

    def test_empty_query_lists_everything(self, search_driver):
        assert self.mismatches(search_driver, [q.EMPTY_QUERY],
                               (ALL, Scope(P1), Scope(P2))) == []

    def test_match_terms(self, search_driver):
        queries = ([Query(match=(term,)) for term in SEARCH_TERMS]
                   + [Query(match_not=(term,)) for term in SEARCH_TERMS])
        assert self.mismatches(search_driver, queries) == []

    def test_text(self, search_driver):
        queries = [Query(text=(needle,)) for needle in SEARCH_TEXTS]
        assert self.mismatches(search_driver, queries) == []

    def test_ranges(self, search_driver):
        queries = [Query(ranges=(rng,)) for rng in SEARCH_RANGES]
        assert self.mismatches(search_driver, queries) == []

    def test_oracle_sanity(self):
        # The document set really exercises the tricky cases.
        assert expected_ids(Query(match=(Term('size', 1),))) == [
            'd00', 'd01', 'd11']
        assert expected_ids(Query(match=(Term('size', True),))) == ['d02']
        assert expected_ids(Query(match=(Term('size', '1'),))) == ['d03']
        assert expected_ids(Query(text=('%',))) == ['d02', 'd11']
        assert expected_ids(Query(text=('_',))) == ['d02', 'd11']
        assert expected_ids(Query(match=(Term('long', LONG_A),))) == [
            'd04', 'd13']
        assert expected_ids(Query(ranges=(Range('size', 1, 1),))) == [
            'd00', 'd01', 'd11']

    def test_combined_queries(self, search_driver):
        scopes = (ALL, Scope(P1), Scope(P2, U1), Scope(P1, U2))
        assert self.mismatches(search_driver, random_queries(120),
                               scopes) == []

    def test_search_with_paging(self, search_driver):
        query = Query(match_not=(Term('name', 'theta'),), text=('a',))
        expected = expected_ids(query, Scope(P1))
        assert len(expected) >= 4
        for offset in range(len(expected) + 1):
            page = search_driver.list('jobs', Scope(P1), query, 2, offset)
            assert ids(page) == expected[offset:offset + 2]

    def test_search_follows_updates_and_deletes(self, driver):
        add(driver, 'jobs', 'j', doc={'status': 'old', 'n': 1})
        by_status = Query(match=(Term('status', 'old'),))
        assert ids(list_all(driver, query=by_status)) == ['j']

        def change(txn):
            record = txn.get('jobs', 'j', Scope(P1))
            txn.update(record, {'status': 'new', 'n': 2})
        driver.atomic(change)
        assert list_all(driver, query=by_status) == []
        assert ids(list_all(driver, query=Query(
            match=(Term('status', 'new'),), ranges=(Range('n', 2, 2),),
            text=('NEW',)))) == ['j']
        assert list_all(driver, query=Query(ranges=(Range('n', 1, 1),))) \
            == []
        driver.delete('jobs', 'j', Scope(P1))
        assert list_all(driver, query=Query(text=('new',))) == []

    def test_search_is_per_kind(self, driver):
        add(driver, 'jobs', 'j', doc={'mark': 'x'})
        add(driver, 'actions', 'a', doc={'mark': 'x'})
        query = Query(match=(Term('mark', 'x'),))
        assert ids(list_all(driver, 'jobs', ALL, query)) == ['j']
        assert ids(list_all(driver, 'actions', ALL, query)) == ['a']
        assert list_all(driver, 'sessions', ALL, query) == []

    def test_long_values_match_exactly(self, driver):
        base_text = 'prefix-' + 'z' * 400
        values = [base_text, base_text + 'a', base_text[:-1] + 'b',
                  base_text[:300]]
        for i, value in enumerate(values):
            add(driver, 'jobs', f'v{i}', created_at=i, doc={'v': value,
                                                            'w': [value]})
        for i, value in enumerate(values):
            for field in ('v', 'w'):
                query = Query(match=(Term(field, value),))
                assert ids(list_all(driver, query=query)) == [f'v{i}']
        assert ids(list_all(driver, query=Query(text=('zb',)))) == ['v2']
        assert ids(list_all(driver, query=Query(
            text=('z' * 350,)))) == ['v0', 'v1', 'v2']

    # -- availability and schema ---------------------------------------------

    def test_ping(self, driver):
        driver.ping()

    def test_dead_pooled_connections_are_replaced(self, backend, driver):
        record = add(driver, 'sessions', 's', doc={'n': 0})
        operations = [
            lambda: driver.get('sessions', 's', ALL),
            lambda: list_all(driver, 'sessions', ALL),
            driver.ping,
            lambda: driver.atomic(increment('sessions', 's', ALL)),
            lambda: add(driver, 'jobs'),
            driver.describe_schema,
        ]
        for operation in operations:
            # Fill the pool, then lose every connection in it.
            threads = [threading.Thread(target=operation) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            backend.drop_connections()
            operation()
        final = driver.get('sessions', 's', ALL)
        assert final.doc['n'] == 4 and final.version == record.version + 4

    def test_unreachable_store_is_unavailable(self, backend):
        driver = backend.unreachable_driver()
        calls = [
            driver.ping,
            lambda: driver.get('jobs', 'x', ALL),
            lambda: driver.list('jobs', ALL, Query(match=(
                Term('a', 1),)), 10, 0),
            lambda: driver.create('jobs', 'x', P1, U1, 1, {}),
            lambda: driver.delete('jobs', 'x', ALL),
            lambda: driver.atomic(lambda txn: txn.get('jobs', 'x', ALL)),
            driver.upgrade_schema,
            driver.describe_schema,
            driver.drop_schema,
        ]
        try:
            for call in calls:
                with pytest.raises(errors.Unavailable) as info:
                    call()
                assert_clean_message(info.value, backend.unreachable_url)
        finally:
            driver.close()

    def test_upgrade_schema_is_idempotent(self, driver):
        record = add(driver)
        before = driver.describe_schema()
        driver.upgrade_schema()
        driver.upgrade_schema()
        assert driver.describe_schema() == before
        assert driver.get('jobs', record.id, ALL) == record

    def test_drop_then_upgrade(self, driver):
        add(driver, 'jobs', 'j')
        driver.drop_schema()
        driver.drop_schema()
        described = driver.describe_schema()
        json.dumps(described)
        driver.upgrade_schema()
        assert list_all(driver, 'jobs', ALL) == []
        assert add(driver, 'jobs', 'j').version == 1

    def test_concurrent_first_upgrade(self, backend, driver):
        driver.drop_schema()
        drivers = [backend.make_driver() for _ in range(3)]
        failures = []
        barrier = threading.Barrier(len(drivers))

        def upgrade(d):
            try:
                barrier.wait(10)
                d.upgrade_schema()
            except Exception as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=upgrade, args=(d,))
                   for d in drivers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for d in drivers:
            d.close()
        assert failures == []
        assert add(driver).version == 1

    def test_describe_schema_is_json(self, driver):
        described = driver.describe_schema()
        assert json.loads(json.dumps(described)) == described

    def test_what_freezer_manage_calls(self, driver):
        # -m KIND narrows an engine that keeps a schema per kind; one whose
        # schema is a whole takes it as the whole
        record = add(driver, 'jobs')
        driver.upgrade_schema(kinds=['jobs'])
        described = driver.describe_schema(kinds=['jobs'])
        assert json.loads(json.dumps(described)) == described
        assert driver.get('jobs', record.id, ALL) == record
        assert driver.schema_exists() in (True, None)
        assert driver.update_settings() in (True, False)
        driver.drop_schema()
        assert driver.schema_exists() in (False, None)


class QueryTimeoutContract:
    """A search that runs past ``query_timeout`` is stopped by the store
    and ends in ``QueryTimeout``, never in a partial page (issue 13.1)."""

    # A needle found in no value: SQL stores then scan all the text.
    slow_needle = 'zz-found-nowhere'

    def test_a_search_past_query_timeout_is_stopped(self, backend, driver):
        # Large documents: 40 of about 300 KB, 2000 long values each, and
        # a needle found in none, so the whole text is searched.
        values = {f'k{i}': f'{i:06d}-' + 'abcdefgh' * 16
                  for i in range(2000)}

        for n in range(40):
            driver.create('jobs', f'big-{n}', P1, U1, 1000 + n,
                          {'n': n, 'values': values})
        query = Query(text=(self.slow_needle,))
        list_all(driver, query=query)  # no error without the limit
        # the smallest limit each store takes (SQLite, Elasticsearch: a
        # microsecond; PostgreSQL, MariaDB: a millisecond)
        limited = backend.make_driver(query_timeout=0.000001)
        try:
            with pytest.raises(errors.QueryTimeout):
                limited.list('jobs', Scope(P1), query, base.MAX_LIST_LIMIT,
                             0)
        finally:
            limited.close()
        # the store, and a driver without the limit, carry on
        assert len(list_all(driver, query=Query(
            match=(Term('n', 3),)))) == 1


class SQLAlchemyContract(StorageContract, QueryTimeoutContract):
    """Checks specific to the SQLAlchemy driver, on top of the contract."""

    def test_only_sqlite_is_embedded(self, backend, driver):
        assert driver.embedded is backend.url.startswith('sqlite')

    def test_describe_schema_shape(self, driver):
        described = driver.describe_schema()
        assert described['revision'] == '0006'
        tables = described['tables']
        for kind in base.KINDS:
            assert set(tables[kind]) >= {'pk', 'id', 'project_id', 'user_id',
                                         'version', 'created_at', 'doc'}
            assert set(tables[f'{kind}_terms']) >= {
                'doc_pk', 'path', 'key', 'value', 'num', 'text'}
        assert set(tables['audit_records']) == {'project_id', 'seq', 'at',
                                                'record'}
        assert set(tables['audit_heads']) == {'project_id', 'seq', 'hash'}
        assert set(tables['audit_events']) == {'event_id', 'at'}
        assert set(tables['cursors']) == {'name', 'cursor_key', 'position',
                                          'holder', 'lease_until'}
        assert len(tables) == 2 * len(base.KINDS) + 4
        driver.drop_schema()
        assert driver.describe_schema()['tables'] == {}
        assert driver.describe_schema()['revision'] is None

    @staticmethod
    def stored(driver, doc_id):
        """A job's stored document and index rows, straight from SQL."""
        from freezer_api.storage.sqlalchemy import models

        table = models.documents['jobs']
        terms = models.terms['jobs']
        with driver._engine.connect() as conn:
            pk, text = conn.execute(
                sa.select(table.c.pk, table.c.doc).where(
                    table.c.id == doc_id)).one()
            rows = conn.execute(
                sa.select(terms.c.path, terms.c.key, terms.c.value,
                          terms.c.num, terms.c.text).where(
                    terms.c.doc_pk == pk)).all()
        return json.loads(text), sorted(rows, key=repr)

    def test_updates_leave_the_index_rows_of_a_fresh_insert(self, driver):
        # values changed in place, in lists, of another type, keys gone
        # and added: the rows are those the final document gets anew
        docs = [
            {'s': {'status': 'scheduled', 'n': 1}, 'tags': ['a', 'b'],
             'x': 1},
            {'s': {'status': 'running', 'n': 2}, 'tags': ['a', 'c'],
             'x': 'one'},
            {'s': {'status': 'running', 'n': 2.5, 'new': None},
             'tags': ['c', 'c', 'd', 'e'], 'y': True},
            {'s': 'flat', 'tags': [], 'y': False},
        ]
        record = driver.create('jobs', 'changing', P1, U1, 1, docs[0])
        for doc in docs[1:]:
            record = driver.atomic(
                lambda txn: txn.update(txn.get('jobs', 'changing', ALL),
                                       doc))
            driver.create('jobs', f'fresh-{record.version}', P1, U1, 1, doc)
            assert (self.stored(driver, 'changing')
                    == self.stored(driver, f'fresh-{record.version}'))

    def test_index_rows_of_twins_and_of_another_process_s_writes(
            self, backend, driver):
        # a process keeps the rows it updated last (TermSets): a document
        # stored as the same text as another, and one last written by
        # another process, must still get their own rows
        doc = {'s': {'status': 'scheduled'}, 'tags': ['a']}
        changed = {'s': {'status': 'running'}, 'tags': ['b']}
        elsewhere = {'s': {'status': 'stopped'}, 'tags': ['c']}
        for doc_id in ('twin-1', 'twin-2', 'fresh'):
            driver.create('jobs', doc_id, P1, U1, 1, dict(doc))

        def update(on, doc_id, new):
            on.atomic(lambda txn: txn.update(
                txn.get('jobs', doc_id, ALL), new))

        update(driver, 'twin-2', changed)
        assert self.stored(driver, 'twin-1') == self.stored(driver, 'fresh')
        other = backend.make_driver()
        try:
            update(other, 'twin-2', elsewhere)
        finally:
            other.close()
        update(driver, 'twin-2', doc)
        assert self.stored(driver, 'twin-2') == self.stored(driver, 'fresh')
        assert self.stored(driver, 'twin-1') == self.stored(driver, 'fresh')

    def test_a_prepared_insert_stores_what_an_insert_in_a_change_does(
            self, driver):
        doc = {'a': {'b': [1, 'X', None, 2.5]}, 'c': True, 'd': 'ü'}
        driver.create('jobs', 'prepared', P1, U1, 1, doc)
        driver.atomic(lambda txn: txn.insert('jobs', 'in-change', P1, U1, 1,
                                             dict(doc)))
        prepared = self.stored(driver, 'prepared')
        assert prepared == self.stored(driver, 'in-change')
        assert prepared[0] == doc
        # what is prepared is that very document: another one inserted
        # meanwhile is encoded as itself
        other = {'other': 1}
        with driver.preparing(doc):
            driver.atomic(lambda txn: txn.insert('jobs', 'other', P1, U1, 1,
                                                 other))
        other_doc, other_rows = self.stored(driver, 'other')
        assert other_doc == other
        assert [row[:3] for row in other_rows] == [('other', 'other', '1')]

    def test_migrations_match_the_models(self, backend, driver):
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from freezer_api.storage.sqlalchemy import models

        engine = sa.create_engine(backend.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={'compare_type': True})
                diff = compare_metadata(context, models.metadata)
        finally:
            engine.dispose()
        assert diff == []

    def test_index_rows_are_bounded(self, backend, driver):
        from freezer_api.storage.sqlalchemy import models

        long_key = 'k' * 500
        add(driver, 'jobs', 'j', doc={long_key: 'v' * 5000, 'a': [1, 1, 1]})
        engine = sa.create_engine(backend.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.select(
                    models.terms['jobs'])).mappings().all()
        finally:
            engine.dispose()
        assert len(rows) == 2  # duplicate leaves are stored once
        for row in rows:
            for column in ('path', 'key', 'value'):
                assert len(row[column]) <= models.INDEX_LENGTH
        assert ids(list_all(driver, query=Query(
            match=(Term(long_key, 'v' * 5000),)))) == ['j']
