"""Grow a store to N jobs and N backups, straight into the store.

A level of N stored documents means the benchmark's project holds N jobs
(what the poll searches) and N backups (what the backup search searches),
2 N documents in all, plus its 100 clients and 400 sessions; every filler
is in the project, none in another one.

Filler documents are copies of a stored base document (as each service
stored it) with new ids, owned by other clients (``filler_nodeNNNNNN``, ten
jobs each) and other backup names (``filler_NNNNNNN``), so the base
documents the scenarios look for stay the same and only the store grows.
Our fillers are older than the base documents (``created_at``): a list that
walked the project in creation order would have to pass all of them.

Ours on SQL: rows of ``<kind>`` plus their index rows, exactly those of
``models.term_rows``, the very function the driver uses (see
``TermPatcher``). Ours on Elasticsearch: bulk requests of
the driver's own ``_source`` form. Upstream: copies of its table rows.
"""

import copy
import functools
import json
import time

import requests
import sqlalchemy as sa

from bench import deploy

BATCH = 20000


def filler_changes(kind, k):
    """The leaves filler ``k`` of ``kind`` changes in the base document:
    {dotted path: value}. Every filler loader derives its fillers from it."""
    if kind == 'jobs':
        return {'job_id': f'f{k:031x}',
                'client_id': f'filler_node{k // 10:06d}',
                'description': f'nightly backup of filler {k}'}
    return {'backup_id': f'f{k:031x}',
            'backup_metadata.backup_name': f'filler_{k:07d}',
            'backup_metadata.hostname': f'filler{k // 10:06d}',
            'backup_metadata.time_stamp': 1_700_000_000 + k}


def patched(doc, changes):
    """``doc`` with ``changes`` applied; only the dicts on a changed path
    are copied, the rest is shared with ``doc``."""
    doc = dict(doc)
    for path, value in changes.items():
        parts = path.split('.')
        node = doc
        for part in parts[:-1]:
            node[part] = dict(node[part])
            node = node[part]
        node[parts[-1]] = value
    return doc


def _nested(changes):
    """The changed leaves alone, as a document."""
    out = {}
    for path, value in changes.items():
        parts = path.split('.')
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _filler_job(doc, k, id_key='job_id'):
    changes = filler_changes('jobs', k)
    changes[id_key] = changes.pop('job_id')
    return patched(copy.deepcopy(doc), changes)


def _filler_backup_meta(meta, k):
    prefix = 'backup_metadata.'
    return patched(copy.deepcopy(meta), {
        path[len(prefix):]: value
        for path, value in filler_changes('backups', k).items()
        if path.startswith(prefix)})


def grow(store, side, where, level, log=None):
    """Add fillers until the project holds ``level`` jobs and backups.

    Returns how many documents were added and, for ours on SQL, the
    timings of the load (``details``)."""
    if side == 'ours' and store == 'elasticsearch':
        return _grow_ours_es(where, level), {}
    if side == 'ours':
        return _grow_ours_sql(where['connection'], level, log)
    return _grow_upstream_sql(where['connection'], level), {}


# -- ours, SQL ----------------------------------------------------------------
#
# PERF: a filler differs from the base document in a few leaves only, so the
# index rows of the base are computed once (``models.term_rows``, the
# driver's own function) and only the rows of the changed leaves are
# computed per filler (``TermPatcher``); samples are checked against
# ``models.term_rows`` of the whole filler. Rows go through the DB-API
# (sqlite3 executemany in big transactions, PostgreSQL COPY), and a big load
# drops the secondary indexes of the tables it fills and creates them again
# afterwards, from the metadata of ``models`` (the driver's definitions).
# Column names come from ``models`` too, never from a list kept here.

# A load of at least BIG_LOAD documents, more than the table holds, drops
# the indexes and creates them again afterwards.
BIG_LOAD = 50_000
# Fillers checked against models.term_rows of the whole document.
SAMPLES = 200


class TermPatcher:
    """Index rows of fillers: the base's rows, with those of the changed
    leaves computed again."""

    def __init__(self, models, base_doc, changed_paths):
        self.models = models
        rows = models.term_rows(0, base_doc)
        if not rows:
            raise ValueError('base document without index rows')
        # Columns in the order of term_rows' keys, doc_pk first.
        self.columns = ['doc_pk'] + [c for c in rows[0] if c != 'doc_pk']
        changed = {models.index_form(p) for p in changed_paths}
        for path in changed:
            n = sum(1 for r in rows if r['path'] == path)
            if n > 1:  # a path under a list: patching it is not exact
                raise ValueError(f'{path}: {n} leaves, cannot patch')
        self.kept = [tuple(r[c] for c in self.columns[1:]) for r in rows
                     if r['path'] not in changed]

    def rows(self, pk, changes):
        out = [(pk,) + rest for rest in self.kept]
        cols = self.columns
        out += [tuple(r[c] for c in cols)
                for r in self.models.term_rows(pk, _nested(changes))]
        return out

    def check(self, pk, doc, changes):
        """The patched rows are those of the whole filler, exactly."""
        import collections
        expected = collections.Counter(
            tuple(r[c] for c in self.columns)
            for r in self.models.term_rows(pk, doc))
        got = collections.Counter(self.rows(pk, changes))
        if expected != got:
            raise AssertionError(
                f'index rows of filler pk {pk} differ from term_rows: '
                f'missing {expected - got}, extra {got - expected}')


def _sample(todo):
    """Fillers to check: the first, the last and an even spread."""
    step = max(1, todo // SAMPLES)
    return set(range(0, todo, step)) | {todo - 1}


def _quote(engine, name):
    return engine.dialect.identifier_preparer.quote(name)


def _ddl(engine, element):
    return str(element.compile(dialect=engine.dialect))


def _grow_ours_sql(url, level, log=None):
    from freezer_api.storage.sqlalchemy import models
    engine = sa.create_engine(url)
    details = {}
    added = 0
    try:
        for kind in ('jobs', 'backups'):
            n, timing = _grow_ours_kind(engine, models, kind, level, log)
            added += n
            if timing:
                details[kind] = timing
        started = time.monotonic()
        if engine.dialect.name == 'postgresql':
            with engine.begin() as conn:
                for kind in ('jobs', 'backups'):
                    conn.execute(sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{kind}', "
                        f"'pk'), (SELECT max(pk) FROM {kind}))"))
                conn.execute(sa.text('ANALYZE'))
        else:
            with engine.begin() as conn:
                conn.execute(sa.text('ANALYZE'))
        details['analyze_s'] = round(time.monotonic() - started, 1)
    finally:
        engine.dispose()
    return added, details


def _grow_ours_kind(engine, models, kind, level, log):
    docs = models.documents[kind]
    terms = models.terms[kind]
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(docs)
                             .where(docs.c.project_id == deploy.PROJECT)
                             ).scalar()
        if count >= level:
            return 0, {}
        template = conn.execute(
            sa.select(docs).where(docs.c.project_id == deploy.PROJECT)
            .order_by(docs.c.created_at.desc()).limit(1)).one()
        total, oldest, max_pk = conn.execute(sa.select(
            sa.func.count(), sa.func.min(docs.c.created_at),
            sa.func.max(docs.c.pk)).select_from(docs)).one()
    # NOTE: the loader must be the only connection to leave WAL on SQLite.
    engine.dispose()
    base_doc = json.loads(template.doc)
    todo = level - count
    changed = list(filler_changes(kind, 0))
    patcher = TermPatcher(models, base_doc, changed)
    doc_columns = [c.name for c in docs.columns]
    # Values of the columns a filler does not set: the template's.
    fixed = dict(template._mapping)

    def doc_row(pk, k, doc):
        row = dict(fixed, pk=pk, id=doc[f'{kind[:-1]}_id'], version=1,
                   created_at=oldest - 1 - k,
                   doc=json.dumps(doc, separators=(',', ':')))
        return tuple(row[c] for c in doc_columns)

    samples = _sample(todo)
    checked = 0

    def batches():
        nonlocal checked
        pk = max_pk
        for first in range(0, todo, BATCH):
            doc_rows, term_rows = [], []
            for j in range(first, min(todo, first + BATCH)):
                k = count + j
                pk += 1
                changes = filler_changes(kind, k)
                doc = patched(base_doc, changes)
                doc_rows.append(doc_row(pk, k, doc))
                term_rows.extend(patcher.rows(pk, changes))
                if j in samples:
                    # Built independently of ``patched``: a deep copy.
                    whole = copy.deepcopy(base_doc)
                    for path, value in changes.items():
                        node = whole
                        *parents, leaf = path.split('.')
                        for part in parents:
                            node = node[part]
                        node[leaf] = value
                    if json.loads(doc_rows[-1][doc_columns.index('doc')]) \
                            != whole:
                        raise AssertionError(f'filler {k} is not the base '
                                             f'with {changes}')
                    patcher.check(pk, whole, changes)
                    checked += 1
            yield doc_rows, term_rows

    big = todo >= BIG_LOAD and todo > total
    indexes = list(docs.indexes) + list(terms.indexes) if big else []
    timing = {'documents': todo, 'index_rows': 0, 'dropped_indexes':
              [i.name for i in indexes]}
    load = (_load_pg if engine.dialect.name == 'postgresql'
            else _load_sqlite)
    started = time.monotonic()
    timing.update(load(engine, models, kind, doc_columns, patcher.columns,
                       indexes, batches(), timing, log))
    timing['checked_fillers'] = checked
    timing['seconds'] = round(time.monotonic() - started, 1)
    if log:
        log(f'{kind}: +{todo} documents, {timing["index_rows"]} index rows '
            f'in {timing["seconds"]}s ({timing})')
    return todo, timing


def _load_sqlite(engine, models, kind, doc_columns, term_columns, indexes,
                 batches, timing, log):
    import sqlite3
    path = engine.url.database
    raw = sqlite3.connect(path, isolation_level=None)
    q = functools.partial(_quote, engine)
    insert_docs = (f'INSERT INTO {q(kind)} '
                   f'({", ".join(q(c) for c in doc_columns)}) VALUES '
                   f'({", ".join("?" * len(doc_columns))})')
    insert_terms = (f'INSERT INTO {q(kind + "_terms")} '
                    f'({", ".join(q(c) for c in term_columns)}) VALUES '
                    f'({", ".join("?" * len(term_columns))})')
    out = {}
    try:
        journal = raw.execute('PRAGMA journal_mode').fetchone()[0]
        synchronous = raw.execute('PRAGMA synchronous').fetchone()[0]
        raw.execute('PRAGMA synchronous = OFF')
        # Leaving WAL needs the only connection: the servers are stopped.
        mode = raw.execute('PRAGMA journal_mode = MEMORY').fetchone()[0]
        out['journal_mode_during_load'] = mode
        raw.execute('PRAGMA cache_size = -1000000')
        started = time.monotonic()
        raw.execute('BEGIN')
        for index in indexes:
            raw.execute(_ddl(engine, sa.schema.DropIndex(index)))
        raw.execute('COMMIT')
        for doc_rows, term_rows in batches:
            raw.execute('BEGIN')
            raw.executemany(insert_docs, doc_rows)
            raw.executemany(insert_terms, term_rows)
            raw.execute('COMMIT')
            timing['index_rows'] += len(term_rows)
        out['insert_s'] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        for index in indexes:
            raw.execute(_ddl(engine, sa.schema.CreateIndex(index)))
        out['create_indexes_s'] = round(time.monotonic() - started, 1)
        raw.execute(f'PRAGMA journal_mode = {journal}')
        raw.execute(f'PRAGMA synchronous = {synchronous}')
        out['journal_mode_after'] = raw.execute(
            'PRAGMA journal_mode').fetchone()[0]
    finally:
        raw.close()
    return out


def _load_pg(engine, models, kind, doc_columns, term_columns, indexes,
             batches, timing, log):
    q = functools.partial(_quote, engine)
    terms = models.terms[kind]
    # A foreign key is checked row by row on COPY; a big load drops it too
    # and adds it again (one check of the whole table).
    fks = list(terms.foreign_key_constraints) if indexes else []
    raw = engine.raw_connection()
    out = {}
    try:
        cur = raw.cursor()
        started = time.monotonic()
        for fk in fks:
            cur.execute(_ddl(engine, sa.schema.DropConstraint(fk)))
        for index in indexes:
            cur.execute(_ddl(engine, sa.schema.DropIndex(index)))
        raw.commit()
        for doc_rows, term_rows in batches:
            with cur.copy(f'COPY {q(kind)} '
                          f'({", ".join(q(c) for c in doc_columns)}) '
                          'FROM STDIN') as cp:
                for row in doc_rows:
                    cp.write_row(row)
            with cur.copy(f'COPY {q(kind + "_terms")} '
                          f'({", ".join(q(c) for c in term_columns)}) '
                          'FROM STDIN') as cp:
                for row in term_rows:
                    cp.write_row(row)
            raw.commit()
            timing['index_rows'] += len(term_rows)
        out['insert_s'] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        cur.execute('SET maintenance_work_mem = \'1GB\'')
        for index in indexes:
            cur.execute(_ddl(engine, sa.schema.CreateIndex(index)))
        for fk in fks:
            cur.execute(_ddl(engine, sa.schema.AddConstraint(fk)))
        raw.commit()
        out['create_indexes_s'] = round(time.monotonic() - started, 1)
    finally:
        raw.close()
    return out


# -- ours, Elasticsearch ------------------------------------------------------

def _grow_ours_es(where, level):
    from freezer_api.storage import base
    from freezer_api.storage.elasticsearch import driver
    url, index = where['es_hosts'], where['es_index']
    added = 0
    for kind in ('jobs', 'backups'):
        query = {'bool': {'filter': [{'term': {'kind': kind}},
                                     {'term': {'project_id':
                                               deploy.PROJECT}}]}}
        count = requests.post(f'{url}/{index}/_count', json={'query': query},
                              timeout=120).json()['count']
        if count >= level:
            continue
        hits = requests.post(f'{url}/{index}/_search', json={
            'query': query, 'size': 1,
            'sort': [{'created_at': 'asc'}]}, timeout=120).json()
        src = hits['hits']['hits'][0]['_source']
        oldest = src['created_at']
        base_doc = src['doc']
        todo = level - count
        for first in range(count, level, BATCH):
            lines = []
            for k in range(first, min(level, first + BATCH)):
                if kind == 'jobs':
                    doc = _filler_job(base_doc, k)
                    doc_id = doc['job_id']
                else:
                    doc = copy.deepcopy(base_doc)
                    doc['backup_id'] = doc_id = f'f{k:031x}'
                    doc['backup_metadata'] = _filler_backup_meta(
                        base_doc['backup_metadata'], k)
                record = base.Record(kind=kind, id=doc_id,
                                     project_id=src['project_id'],
                                     user_id=src['user_id'], version=1,
                                     created_at=oldest - 1 - k, doc=doc)
                source = driver._source(record)
                lines.append(json.dumps({'create': {'_id': source['key']}}))
                lines.append(json.dumps(source))
            response = requests.post(
                f'{url}/{index}/_bulk', data='\n'.join(lines) + '\n',
                headers={'Content-Type': 'application/x-ndjson'},
                timeout=600)
            body = response.json()
            if response.status_code >= 300 or body.get('errors'):
                raise RuntimeError(f'bulk failed: {str(body)[:1000]}')
        added += todo
    requests.post(f'{url}/{index}/_refresh', timeout=600)
    return added


# -- upstream, SQL ------------------------------------------------------------

def _grow_upstream_sql(url, level):
    engine = sa.create_engine(url)
    added = 0
    try:
        meta = sa.MetaData()
        for kind in ('jobs', 'backups'):
            table = sa.Table(kind, meta, autoload_with=engine)
            with engine.connect() as conn:
                count = conn.execute(
                    sa.select(sa.func.count()).select_from(table)
                    .where(table.c.project_id == deploy.PROJECT)).scalar()
                if count >= level:
                    continue
                template = dict(conn.execute(
                    sa.select(table).where(
                        table.c.project_id == deploy.PROJECT).limit(1)
                ).one()._mapping)
            meta_doc = (json.loads(template['backup_metadata'])
                        if kind == 'backups' else None)
            for first in range(count, level, BATCH):
                rows = []
                for k in range(first, min(level, first + BATCH)):
                    row = dict(template, id=f'f{k:031x}')
                    if kind == 'jobs':
                        row['client_id'] = f'filler_node{k // 10:06d}'
                        row['description'] = f'nightly backup of filler {k}'
                    else:
                        row['backup_metadata'] = json.dumps(
                            _filler_backup_meta(meta_doc, k))
                    rows.append(row)
                with engine.begin() as conn:
                    conn.execute(sa.insert(table), rows)
            added += level - count
    finally:
        engine.dispose()
    return added


def probe_upstream(service, ids, timeout):
    """A few sequential requests, for a server too slow for a load run."""
    base = f'{service.url}/v2/{deploy.PROJECT}'
    out = {}
    for scenario, path, body in (
            ('poll', '/jobs/?limit=10&offset=0',
             {'match': [{'client_id': ids['clients'][0]}],
              'match_not': [{'status': 'completed'}]}),
            ('backup_search', '/backups/?limit=10&offset=0',
             {'match': [{'backup_name': ids['backup_names'][0]}]})):
        times = []
        for _ in range(2):
            started = time.monotonic()
            try:
                response = requests.get(base + path, data=json.dumps(body),
                                        headers=deploy.HEADERS,
                                        timeout=timeout)
                status = response.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            times.append({'seconds': round(time.monotonic() - started, 2),
                          'status': status})
            if status != 200 or times[-1]['seconds'] > 20:
                break
        out[scenario] = times
    rss = service.worker_rss_mib()
    out['rss_mib'] = max(rss) if rss else None
    return out


def self_check(n=2000):
    """Patched fillers and their index rows against ``models.term_rows``,
    on documents shaped like the stored ones (no store needed)."""
    from freezer_api.storage.sqlalchemy import models
    from bench import data
    bases = {
        'jobs': dict(data.job_doc(data.client_id(1), 3), job_id='0' * 32,
                     user_id='bench_user', project_id=deploy.PROJECT),
        'backups': {'backup_id': '0' * 32, 'user_id': 'bench_user',
                    'project_id': deploy.PROJECT,
                    'backup_metadata': data.backup_doc('mysql_node001', 1)},
    }
    for kind, base_doc in bases.items():
        frozen = json.dumps(base_doc, sort_keys=True)
        patcher = TermPatcher(models, base_doc, list(filler_changes(kind,
                                                                    0)))
        for k in list(range(n)) + [999_999, 1_234_567]:
            changes = filler_changes(kind, k)
            doc = patched(base_doc, changes)
            patcher.check(k + 1, copy.deepcopy(doc), changes)
        assert json.dumps(base_doc, sort_keys=True) == frozen, 'base changed'
    return True


if __name__ == '__main__':
    self_check()
    print('bench.scale self-check: patched index rows == models.term_rows')
