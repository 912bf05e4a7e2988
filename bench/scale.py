"""Grow a store to N jobs and N backups, straight into the store.

Filler documents are copies of a stored base document (as each service
stored it) with new ids, owned by other clients (``filler_nodeNNNNNN``, ten
jobs each) and other backup names (``filler_NNNNNNN``), so the base
documents the scenarios look for stay the same and only the store grows.
Our fillers are older than the base documents (``created_at``): a list that
walked the project in creation order would have to pass all of them.

Ours on SQL: rows of ``<kind>`` plus their index rows (``models.term_rows``,
the very function the driver uses). Ours on Elasticsearch: bulk requests of
the driver's own ``_source`` form. Upstream: copies of its table rows.
"""

import copy
import json
import time

import requests
import sqlalchemy as sa

from bench import deploy

BATCH = 20000


def _filler_job(doc, k, id_key='job_id'):
    doc = copy.deepcopy(doc)
    doc[id_key] = f'f{k:031x}'
    doc['client_id'] = f'filler_node{k // 10:06d}'
    doc['description'] = f'nightly backup of filler {k}'
    return doc


def _filler_backup_meta(meta, k):
    meta = copy.deepcopy(meta)
    meta['backup_name'] = f'filler_{k:07d}'
    meta['hostname'] = f'filler{k // 10:06d}'
    meta['time_stamp'] = 1_700_000_000 + k
    return meta


def grow(store, side, where, level):
    """Add fillers until the project holds ``level`` jobs and backups."""
    if side == 'ours' and store == 'elasticsearch':
        return _grow_ours_es(where, level)
    if side == 'ours':
        return _grow_ours_sql(where['connection'], level)
    return _grow_upstream_sql(where['connection'], level)


# -- ours, SQL ----------------------------------------------------------------

def _grow_ours_sql(url, level):
    from freezer_api.storage.sqlalchemy import models
    engine = sa.create_engine(url)
    added = 0
    try:
        for kind in ('jobs', 'backups'):
            added += _grow_ours_kind(engine, models, kind, level)
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
    finally:
        engine.dispose()
    return added


def _grow_ours_kind(engine, models, kind, level):
    docs = models.documents[kind]
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(docs)
                             .where(docs.c.project_id == deploy.PROJECT)
                             ).scalar()
        if count >= level:
            return 0
        template = conn.execute(
            sa.select(docs).where(docs.c.project_id == deploy.PROJECT)
            .order_by(docs.c.created_at.desc()).limit(1)).one()
        oldest, max_pk = conn.execute(sa.select(
            sa.func.min(docs.c.created_at), sa.func.max(docs.c.pk))).one()
    base_doc = json.loads(template.doc)
    postgres = engine.dialect.name == 'postgresql'
    todo = level - count
    start = count
    pk = max_pk
    done = 0
    while done < todo:
        n = min(BATCH, todo - done)
        doc_rows, term_rows = [], []
        for j in range(n):
            k = start + done + j
            pk += 1
            if kind == 'jobs':
                doc = _filler_job(base_doc, k)
                doc_id = doc['job_id']
            else:
                doc = copy.deepcopy(base_doc)
                doc['backup_id'] = doc_id = f'f{k:031x}'
                doc['backup_metadata'] = _filler_backup_meta(
                    base_doc['backup_metadata'], k)
            doc_rows.append({
                'pk': pk, 'id': doc_id, 'project_id': template.project_id,
                'user_id': template.user_id, 'version': 1,
                'created_at': oldest - 1 - k,
                'doc': json.dumps(doc, separators=(',', ':'))})
            term_rows.extend(models.term_rows(pk, doc))
        if postgres:
            _copy_pg(engine, kind, doc_rows, term_rows)
        else:
            _insert_sqlite(engine, kind, doc_rows, term_rows)
        done += n
    return todo


DOC_COLUMNS = ('pk', 'id', 'project_id', 'user_id', 'version', 'created_at',
               'doc')
TERM_COLUMNS = ('doc_pk', 'path', 'key', 'value', 'num', 'text')


def _insert_sqlite(engine, kind, doc_rows, term_rows):
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.executemany(
            f'INSERT INTO {kind} ({", ".join(DOC_COLUMNS)}) VALUES '
            f'({", ".join("?" * len(DOC_COLUMNS))})',
            [tuple(r[c] for c in DOC_COLUMNS) for r in doc_rows])
        cur.executemany(
            f'INSERT INTO {kind}_terms ({", ".join(TERM_COLUMNS)}) VALUES '
            f'({", ".join("?" * len(TERM_COLUMNS))})',
            [tuple(r[c] for c in TERM_COLUMNS) for r in term_rows])
        raw.commit()
    finally:
        raw.close()


def _copy_pg(engine, kind, doc_rows, term_rows):
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cols = ('pk', 'id', 'project_id', 'user_id', 'version', 'created_at',
                'doc')
        with cur.copy(f'COPY {kind} ({", ".join(cols)}) FROM STDIN') as cp:
            for row in doc_rows:
                cp.write_row([row[c] for c in cols])
        tcols = ('doc_pk', 'path', 'key', 'value', 'num', 'text')
        with cur.copy(f'COPY {kind}_terms ({", ".join(tcols)}) '
                      'FROM STDIN') as cp:
            for row in term_rows:
                cp.write_row([row[c] for c in tcols])
        raw.commit()
    finally:
        raw.close()


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
