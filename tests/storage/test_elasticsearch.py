"""The storage contract on Elasticsearch (a real server, see
tests/fixtures/elasticsearch.py), plus what is specific to that driver."""

import json
import socket
import time

import pytest
import requests

from freezer_api.storage import base
from freezer_api.storage import errors
from freezer_api.storage import query as q
from freezer_api.storage.base import Scope
from freezer_api.storage.elasticsearch import driver as es_driver
from freezer_api.storage.elasticsearch import journal as es_journal
from freezer_api.storage.elasticsearch import mappings
from freezer_api.storage.elasticsearch import turns as es_turns
from freezer_api.storage.query import Query
from freezer_api.storage.query import Term
from tests.fixtures import elasticsearch as es_fixture

from . import contract
from .threads import run_in_threads

pytestmark = pytest.mark.elasticsearch

ES_DRIVER = 'freezer_api.storage.elasticsearch.driver:ElasticsearchDriver'
ES_WORDS = ('elastic', 'urllib3', 'transport', 'index_not_found',
            'exception', 'http://')

# The contract names the options of the SQL driver; these are their
# [elasticsearch] equivalents.
OPTION_NAMES = {'max_retries': 'conflict_retries',
                'max_pool_size': 'connections_per_node'}


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class ElasticsearchBackend:
    """The contract's ``backend`` for the Elasticsearch driver: one index
    on the test server, reached through a proxy that can cut connections."""

    serialized_writers = False

    def __init__(self, server, proxy, index):
        self.server = server
        self.proxy = proxy
        self.index = index
        self.unreachable_url = f'http://127.0.0.1:{_closed_port()}'

    def _options(self, hosts, options):
        values = {'hosts': hosts, 'index': self.index}
        for name, value in options.items():
            values[OPTION_NAMES.get(name, name)] = value
        return {'elasticsearch': values}

    def factory(self, **options):
        return contract.DriverFactory(
            ES_DRIVER, self._options([self.proxy.url], options))

    def make_driver(self, **options):
        return self.factory(**options)()

    def unreachable_driver(self):
        return contract.DriverFactory(ES_DRIVER, self._options(
            [self.unreachable_url], {'retries': 0, 'timeout': 5}))()

    def drop_connections(self):
        self.proxy.drop_connections()

    def reset(self):
        """Empty the index (faster than a new one), or delete whatever
        stands under its name when it is not ours."""
        alias = requests.get(f'{self.server.url}/_alias/{self.index}',
                             timeout=30)
        if alias.status_code == 200:
            es_fixture.IndexRef(self.server, self.index).empty()
        else:
            self.server.delete_index(self.index)


@pytest.fixture(scope='module')
def es_proxy(elasticsearch_server):
    target = requests.utils.urlparse(elasticsearch_server.url)
    proxy = es_fixture.TcpProxy(target.hostname, target.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope='module')
def es_index_name(elasticsearch_server):
    name = elasticsearch_server.new_index_name()
    yield name
    elasticsearch_server.delete_index(name)


class TestElasticsearch(contract.StorageContract,
                        contract.QueryTimeoutContract):

    def test_a_search_past_query_timeout_is_stopped(
            self, backend, driver, monkeypatch):
        """Elasticsearch checks its ``timeout`` against a clock that moves
        in steps of about 200 ms, between windows of thousands of
        documents: no search this suite can afford reaches it (a
        1-microsecond limit over 40 documents of 300 KB did not). So the
        real server is sent the limit (and must take it), and its answer
        to a search that ran out of time, the hits found so far with
        ``timed_out: true``, is then played by wrapping the real client.
        """
        for n in range(3):
            contract.add(driver, doc_id=f'big-{n}',
                         doc={'n': n, 'text': 'abcdefgh ' * 30000})
        limited = backend.make_driver(query_timeout=0.25)
        try:
            sent = []
            real_search = limited.client.search

            def search(**kwargs):
                sent.append(kwargs)
                return real_search(**kwargs)

            monkeypatch.setattr(limited.client, 'search', search)
            query = Query(text=('abcdefgh',))
            assert len(limited.list('jobs', Scope(contract.P1), query, 10,
                                    0)) == 3
            assert sent[-1]['timeout'] == '250000micros'

            def timed_out(**kwargs):
                return {**real_search(**kwargs), 'timed_out': True}

            monkeypatch.setattr(limited.client, 'search', timed_out)
            with pytest.raises(errors.QueryTimeout):
                limited.list('jobs', Scope(contract.P1), query, 10, 0)
        finally:
            limited.close()

    @pytest.fixture
    def backend(self, elasticsearch_server, es_proxy, es_index_name):
        return ElasticsearchBackend(elasticsearch_server, es_proxy,
                                    es_index_name)

    # -- specific to this driver ---------------------------------------------

    def test_not_embedded(self, driver):
        assert driver.embedded is False

    def test_describe_schema_shape(self, backend, driver):
        described = driver.describe_schema()
        assert described['exists'] is True
        assert described['index'] == backend.index
        (name, index), = described['indices'].items()
        assert name == f'{backend.index}-v{mappings.SCHEMA_VERSION}'
        properties = index['mappings']['properties']
        for kind in base.KINDS:
            assert kind in properties
        assert properties['jobs']['properties']['job_id'][
            'type'] == 'keyword'
        assert properties['jobs']['properties']['job_schedule'][
            'properties']['time_created']['type'] == 'long'
        assert properties['backups']['properties']['backup_metadata'][
            'properties']['encrypted']['type'] == 'boolean'
        assert properties['clients']['properties']['client'][
            'properties']['description']['type'] == 'text'
        assert properties['project_id']['type'] == 'keyword'
        assert properties['created_at']['type'] == 'long'
        assert index['mappings']['dynamic'] == 'strict'
        assert index['settings'] == {'number_of_shards': '1',
                                     'number_of_replicas': '0'}
        only_jobs = driver.describe_schema(kinds=['jobs'])
        (index,), = [list(only_jobs['indices'].values())]
        assert 'jobs' in index['mappings']['properties']
        assert 'backups' not in index['mappings']['properties']
        driver.drop_schema()
        assert driver.describe_schema() == {
            'driver': 'elasticsearch', 'index': backend.index,
            'exists': False}

    def test_index_option_is_honoured(self, backend, driver):
        add = contract.add
        add(driver, 'jobs', 'here')
        other = backend.make_driver(index=backend.index + '-other')
        try:
            other.upgrade_schema()
            assert contract.list_all(other, 'jobs', contract.ALL) == []
            add(other, 'jobs', 'there')
            assert contract.ids(contract.list_all(
                driver, 'jobs', contract.ALL)) == ['here']
        finally:
            other.drop_schema()
            other.close()

    def test_missing_index_is_unavailable_never_auto_created(
            self, backend, driver):
        driver.drop_schema()
        for call in (lambda: contract.add(driver),
                     lambda: driver.get('jobs', 'x', contract.ALL),
                     lambda: contract.list_all(driver),
                     lambda: driver.atomic(lambda txn: txn.insert(
                         'jobs', 'x', 'p', 'u', 1, {}))):
            with pytest.raises(errors.Unavailable) as info:
                call()
            assert 'freezer-manage db sync' in str(info.value)
        assert driver.describe_schema()['exists'] is False

    def test_foreign_index_of_that_name_is_refused(self, backend, driver):
        driver.drop_schema()
        created = requests.put(f'{backend.server.url}/{backend.index}',
                               json={}, timeout=30)
        assert created.status_code == 200, created.text
        with pytest.raises(errors.StorageError) as info:
            driver.upgrade_schema()
        assert 'did not create' in str(info.value)
        driver.drop_schema()
        driver.upgrade_schema()
        assert contract.add(driver).version == 1

    def test_update_settings(self, backend, driver):
        other = backend.make_driver(number_of_replicas=1)
        try:
            other.update_settings()
            (index,), = [list(driver.describe_schema()[
                'indices'].values())]
            assert index['settings']['number_of_replicas'] == '1'
        finally:
            driver.update_settings()
            other.close()

    def test_error_messages_name_no_backend(self, backend):
        driver = backend.unreachable_driver()
        try:
            with pytest.raises(errors.Unavailable) as info:
                driver.ping()
            text = str(info.value).lower()
            for word in ES_WORDS:
                assert word not in text
        finally:
            driver.close()

    def test_a_server_that_does_not_answer_is_unavailable(self, backend):
        # A listening socket nobody accepts from: connections open, no
        # answer ever comes.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hole:
            hole.bind(('127.0.0.1', 0))
            hole.listen(64)
            url = f'http://127.0.0.1:{hole.getsockname()[1]}'
            driver = contract.DriverFactory(ES_DRIVER, {'elasticsearch': {
                'hosts': [url], 'index': backend.index, 'timeout': 0.5,
                'retries': 1}})()
            try:
                for call in (driver.ping,
                             lambda: driver.get('jobs', 'x', contract.ALL),
                             lambda: contract.list_all(driver),
                             lambda: contract.add(driver)):
                    started = time.monotonic()
                    with pytest.raises(errors.Unavailable) as info:
                        call()
                    assert time.monotonic() - started < 5
                    contract.assert_clean_message(info.value, url)
            finally:
                driver.close()

    def test_ids_of_any_length_and_characters(self, driver):
        for doc_id in ('a/b', 'a%2Fb', 'ü' * 300, 'x' * 255, '..', '_all'):
            record = contract.add(driver, 'clients', doc_id)
            assert driver.get('clients', doc_id, Scope(contract.P1)) == \
                record
        assert len(contract.list_all(driver, 'clients')) == 6
        assert es_driver.doc_key('clients', 'a/b', 'c') != \
            es_driver.doc_key('clients', 'a', 'b/c')

    def test_documents_mappings_could_not_hold(self, driver):
        # Keys and types that a dynamic or typed mapping would refuse.
        docs = [{'': 1, 'a.b': 2, '.': 3, 'a': {'b': 'x'}},
                {'a': 'text'}, {'a': {'nested': True}}, {'a': [1, 'x']},
                {'job_schedule': {'time_created': 'not a number'}},
                {'job_actions': 'not a list'},
                {'k' * 5000: 'v' * 100_000},
                {'many': list(range(20_000))}]
        for i, doc in enumerate(docs):
            record = contract.add(driver, 'jobs', f'j{i}', doc=doc)
            assert driver.get('jobs', record.id, contract.ALL).doc == doc
        assert contract.ids(contract.list_all(driver, query=Query(
            match=(Term('k' * 5000, 'v' * 100_000),)))) == ['j6']
        assert contract.ids(contract.list_all(driver, query=Query(
            text=('v' * 5000,)))) == ['j6']
        assert contract.ids(contract.list_all(driver, query=Query(
            match=(Term('many', 19_999),)))) == ['j7']

    def test_deep_pages_use_search_after(self, driver, monkeypatch):
        monkeypatch.setattr(es_driver, '_RESULT_WINDOW', 7)

        def change(txn):
            for i in range(30):
                txn.insert('backups', f'b{i:02d}', contract.P1, contract.U1,
                           100 - i % 4, {'i': i})
        driver.atomic(change)
        everything = driver.list('backups', Scope(contract.P1),
                                 q.EMPTY_QUERY, 100, 0)
        assert len(everything) == 30
        for offset in (0, 3, 6, 7, 13, 25, 29, 30, 31):
            for limit in (1, 5, 10):
                page = driver.list('backups', Scope(contract.P1),
                                   q.EMPTY_QUERY, limit, offset)
                assert page == everything[offset:offset + limit], (
                    offset, limit)

    def test_refresh_cost(self, backend, driver):
        """Not an assertion on speed: prints what read-your-writes costs."""
        timings = {}
        for policy in ('true', 'false'):
            other = backend.make_driver(refresh=policy)
            try:
                start = time.perf_counter()
                for _ in range(20):
                    contract.add(other, 'backups')
                timings[policy] = (time.perf_counter() - start) / 20
            finally:
                other.close()
        print(f'\nES create with refresh=true: '
              f'{timings["true"] * 1000:.1f} ms, without: '
              f'{timings["false"] * 1000:.1f} ms')

    @staticmethod
    def _write_then_read(writer, reader, mark):
        """A create, then a change of two documents, each found at once by
        a list from ``reader``."""
        record = contract.add(writer, 'sessions', f's{mark}',
                              doc={'mark': mark})
        assert reader.list('sessions', Scope(contract.P1), Query(
            match=(Term('mark', mark),)), 10, 0) == [record]

        def change(txn):
            found = txn.get('sessions', f's{mark}', contract.ALL)
            txn.update(found, {'mark': -mark - 1})
            txn.insert('jobs', f'j{mark}', contract.P1, contract.U1, mark,
                       {'mark': -mark - 1})
        writer.atomic(change)
        for kind in ('sessions', 'jobs'):
            assert len(reader.list(kind, contract.ALL, Query(
                match=(Term('mark', -mark - 1),)), 10, 0)) == 1

    def test_read_your_writes_across_drivers(self, backend, driver):
        other = backend.make_driver()
        try:
            for i in range(10):
                self._write_then_read(driver, other, i)
        finally:
            other.close()

    @pytest.mark.parametrize('mode', ['on_search', 'true'])
    def test_concurrent_writers_each_read_their_writes(self, backend, driver,
                                                       mode):
        """Concurrent requests of a process share refreshes (after writes
        with refresh = true, before searches with on_search); each writer
        must still find its own write in a list from another driver as
        soon as it returns, for creates and for changes of several
        documents."""
        # ``driver`` made the index; these two use it as processes would
        writer = backend.make_driver(refresh=mode)
        reader = backend.make_driver(refresh=mode)
        refreshed = []
        for group in (writer.refreshes, reader.refreshes):
            real = group._refresh
            group._refresh = lambda real=real: (refreshed.append(1), real())

        def work(thread):
            for i in range(8):
                self._write_then_read(writer, reader, thread * 100 + i)

        try:
            assert run_in_threads(6, work) == []
        finally:
            writer.close()
            reader.close()
        # the refreshes were the group's: none came with a write
        assert refreshed

    def test_losing_multi_document_change_undoes_its_writes(
            self, backend, driver):
        # Two documents: the change writes "a" first ("a" < "b"), then
        # finds "b" changed behind its back: "a" must be put back.
        contract.add(driver, 'sessions', 'a', doc={'n': 0})
        contract.add(driver, 'sessions', 'b', doc={'n': 0})
        other = backend.make_driver()
        runs = []

        def change(txn):
            runs.append(1)
            a = txn.get('sessions', 'a', contract.ALL)
            b = txn.get('sessions', 'b', contract.ALL)
            if len(runs) == 1:
                other.atomic(contract.increment('sessions', 'b',
                                                contract.ALL))
            txn.update(a, {'n': a.doc['n'] + 10})
            txn.update(b, {'n': b.doc['n'] + 10})

        seen = []
        original = es_journal.Journal.undo

        def spy(self, applied):
            seen.append([key for key, _, _ in applied])
            return original(self, applied)

        es_journal.Journal.undo = spy
        try:
            driver.atomic(change)
        finally:
            es_journal.Journal.undo = original
            other.close()
        assert len(runs) == 2
        assert seen == [[es_driver.doc_key('sessions', None, 'a')]]
        a = driver.get('sessions', 'a', contract.ALL)
        b = driver.get('sessions', 'b', contract.ALL)
        assert a.doc == {'n': 10} and a.version == 2
        assert b.doc == {'n': 11} and b.version == 3

    # -- turns of contended writers (issue 17) --------------------------------

    @staticmethod
    def _turn_docs(backend):
        base_url = f'{backend.server.url}/{backend.index}'
        requests.post(f'{base_url}/_refresh', timeout=30)
        found = requests.post(f'{base_url}/_search', json={
            'query': {'term': {'kind': es_turns.TURN}}}, timeout=30).json()
        return [hit['_source'] for hit in found['hits']['hits']]

    @staticmethod
    def _hold_turn(driver, spot, until):
        """A turn document on ``spot`` as a writer elsewhere left it."""
        key = es_turns.Turns.turn_key(spot)
        driver.writer.create(index=driver._index, id=key, refresh='true',
                             document={
                                 'kind': es_turns.TURN, 'key': key,
                                 'id': key.partition('/')[2],
                                 'project_id': '', 'user_id': '',
                                 'version': 1, 'created_at': 1,
                                 'doc': {'host': 'elsewhere', 'pid': 1,
                                         'until': until}})
        return key

    @staticmethod
    def _losing_once(other, runs):
        """A change that overwrites the job 'j', whose first run loses to
        a commit of ``other``."""
        def change(txn):
            runs.append(1)
            record = txn.get('jobs', 'j', Scope(contract.P1))
            if len(runs) == 1:
                other.atomic(contract.overwrite(
                    'jobs', 'j', Scope(contract.P1), {'by': 'other'}))
            return txn.update(record, {'by': 'change', 'run': len(runs)})
        return change

    def test_a_change_that_lost_its_seq_does_not_search_for_the_head(
            self, backend, driver, monkeypatch):
        # Another writer takes the seq this change sealed, between its
        # head read and its commit: the change's records are undone and
        # it runs again. It must then start from the head this driver
        # last committed, not from its undone record (which is not
        # stored, so the check fails and the trail is searched: with
        # refresh = on_search, a refresh of the index per lost race).
        from freezer_api.core import audit
        from . import audit_contract
        audit_contract.append(driver, audit_contract.P1, [1])
        other = backend.make_driver()
        searches = []
        newest = driver._newest_audit
        monkeypatch.setattr(driver, '_newest_audit',
                            lambda p: searches.append(p) or newest(p))
        runs = []

        def change(txn):
            sealed = txn.append_audit(audit_contract.P1,
                                      [audit_contract.entry(2, 'mine')],
                                      audit.seal)
            runs.append(sealed[0]['seq'])
            if len(runs) == 1:
                audit_contract.append(other, audit_contract.P1, [3],
                                      ['theirs'])
            return sealed

        try:
            driver.atomic(change)
        finally:
            other.close()
        assert runs == [2, 3]
        assert searches == []
        stored = audit_contract.chain(driver, audit_contract.P1)
        assert [r['doc_id'] for r in stored] == ['1', 'theirs', 'mine']
        assert audit.verify(audit_contract.P1, stored).ok

    def test_no_record_is_chained_after_one_its_change_undoes(
            self, backend, driver, monkeypatch):
        # A change's record is stored before its change is over; if the
        # change then fails (here: another writer took the id of the job
        # it creates, in the same bulk request), it undoes the record. A
        # writer that read that record as the head in between must not
        # seal after it: the chain would then name a record that is gone.
        import threading
        from freezer_api.core import audit
        from . import audit_contract
        P1 = audit_contract.P1
        audit_contract.append(driver, P1, [1], ['first'])
        other, third = backend.make_driver(), backend.make_driver()
        probed = threading.Event()
        probe = third._audit_head_after

        def probing(*args, **kwargs):
            try:
                return probe(*args, **kwargs)
            finally:
                probed.set()

        monkeypatch.setattr(third, '_audit_head_after', probing)
        undo = driver.journal.undo
        results = []

        def undo_late(applied):
            # the third writer reads the chain while the record is there
            worker = threading.Thread(target=lambda: results.append(
                audit_contract.append(third, P1, [3], ['third'])))
            worker.start()
            assert probed.wait(30)
            outcome = undo(applied)
            worker.join(60)
            return outcome

        monkeypatch.setattr(driver.journal, 'undo', undo_late)

        def change(txn):
            txn.insert('jobs', 'taken', P1, audit_contract.U1, 1, {})
            sealed = txn.append_audit(P1, [audit_contract.entry(2, 'mine')],
                                      audit.seal)
            if not results:
                contract.add(other, 'jobs', 'taken')
            return sealed

        try:
            with pytest.raises(base.IdTaken):
                driver.atomic(change)
        finally:
            other.close()
            third.close()
        assert len(results) == 1
        stored = audit_contract.chain(driver, P1)
        assert [r['doc_id'] for r in stored] == ['first', 'third']
        assert audit.verify(P1, stored).ok

    def test_contended_writers_leave_no_turn_behind(self, backend, driver):
        contract.add(driver, 'jobs', 'j', doc={'n': 0})
        drivers = [backend.make_driver(conflict_retries=1)
                   for _ in range(2)]

        def work(index):
            for n in range(10):
                drivers[index % 2].atomic(contract.overwrite(
                    'jobs', 'j', Scope(contract.P1), {'n': n}))

        try:
            failures = run_in_threads(6, work)
        finally:
            for d in drivers:
                d.close()
        assert failures == []
        assert driver.get('jobs', 'j', contract.ALL).version == 61
        assert self._turn_docs(backend) == []

    def test_a_turn_held_past_its_lease_is_taken_over(self, backend,
                                                      driver):
        contract.add(driver, 'jobs', 'j', doc={})
        self._hold_turn(driver, es_driver.doc_key('jobs', None, 'j'),
                        until=time.time() - 1)
        other = backend.make_driver()
        runs = []
        try:
            result = driver.atomic(self._losing_once(other, runs))
        finally:
            other.close()
        assert len(runs) == 2
        assert result.doc == {'by': 'change', 'run': 2}
        assert driver.get('jobs', 'j', contract.ALL) == result
        assert self._turn_docs(backend) == []

    def test_a_writer_past_its_deadline_goes_on_without_its_turn(
            self, backend):
        backend.reset()
        driver = backend.make_driver(contention_timeout=0.5)
        other = backend.make_driver()
        try:
            driver.upgrade_schema()
            contract.add(driver, 'jobs', 'j', doc={})
            # held by a live writer that never gives it back
            key = self._hold_turn(driver,
                                  es_driver.doc_key('jobs', None, 'j'),
                                  until=time.time() + 3600)
            runs = []
            result = driver.atomic(self._losing_once(other, runs))
        finally:
            other.close()
            driver.close()
        assert len(runs) == 2
        assert result.doc == {'by': 'change', 'run': 2}
        assert [t['key'] for t in self._turn_docs(backend)] == [key]

    def test_stored_source_is_the_document(self, backend, driver):
        contract.add(driver, 'jobs', 'j', doc={'job_id': 'j', 'x': [1]})
        key = es_driver.doc_key('jobs', None, 'j')
        raw = requests.get(f'{backend.server.url}/{backend.index}/_doc/'
                           f'{requests.utils.quote(key, safe="")}',
                           timeout=30).json()
        assert set(raw['_source']) == {'kind', 'key', 'id', 'project_id',
                                       'user_id', 'version', 'created_at',
                                       'doc'}
        assert json.loads(json.dumps(raw['_source']['doc'])) == {
            'job_id': 'j', 'x': [1]}

    def test_typed_copy_is_searchable_by_operators(self, backend, driver):
        """The typed copy is never read back by the driver, but it is what
        operators query (and what ``freezer-manage -m KIND`` syncs and
        shows): ids as keywords, counters as longs; a value of the wrong
        type is left out of it, never refused."""
        contract.add(driver, 'jobs', 'j1', doc={
            'job_id': 'j1', 'job_schedule': {'time_created': 1000}})
        contract.add(driver, 'jobs', 'j2', doc={
            'job_id': 'j2', 'job_schedule': {'time_created': 'soon'}})
        contract.add(driver, 'backups', 'b1', doc={
            'backup_metadata': {'level': 2, 'encrypted': True}})

        # NOTE: with refresh = on_search writes do not refresh: an
        # operator's own search sees them within the index's refresh
        # interval
        requests.post(f'{backend.server.url}/{backend.index}/_refresh',
                      timeout=30)

        def search(query):
            response = requests.post(
                f'{backend.server.url}/{backend.index}/_search',
                json={'query': query}, timeout=30)
            assert response.status_code == 200, response.text
            return sorted(hit['_source']['id']
                          for hit in response.json()['hits']['hits'])

        assert search({'term': {'jobs.job_id': 'j2'}}) == ['j2']
        assert search({'range': {'jobs.job_schedule.time_created': {
            'gte': 999}}}) == ['j1']
        assert search({'bool': {'filter': [
            {'range': {'backups.backup_metadata.level': {'lte': 2}}},
            {'term': {'backups.backup_metadata.encrypted': True}}]}}) == [
                'b1']
        assert driver.get('jobs', 'j2', contract.ALL).doc[
            'job_schedule'] == {'time_created': 'soon'}
