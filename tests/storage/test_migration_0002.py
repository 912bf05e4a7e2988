"""Revision 0002 (slimmer index) on a store written at revision 0001.

The documents and their index rows stay; searches by key, path and range
give the same answers before and after; the indexes are the ones the
models describe; downgrading restores the 0001 indexes.
"""

from freezer_api.storage import query as q
from freezer_api.storage.base import Scope
from freezer_api.storage.sqlalchemy import driver as sql_driver
from freezer_api.storage.sqlalchemy import sqlite as sql_sqlite
from tests.conftest import make_conf
from tests.storage import migrations

P = 'project-a'
QUERIES = [
    q.Query(match=(q.Term('client_id', 'node_1'),)),
    q.Query(match=(q.Term('job_schedule.status', 'scheduled'),),
            match_not=(q.Term('result', 'fail'),)),
    q.Query(match=(q.Term('x.y', 1),)),      # a key holding a dot
    q.Query(match=(q.Term('a.x.y', 1),)),
    q.Query(ranges=(q.Range('job_schedule.pid', 3, 7),)),
    q.Query(text=('NIGHT',)),
]


def _indexes(url, kind='jobs'):
    return migrations.indexes(url, f'{kind}_terms')


def _answers(driver):
    return [[record.id for record in driver.list('jobs', Scope(P), query,
                                                 100, 0)]
            for query in QUERIES]


def test_upgrade_from_0001_keeps_every_answer(tmp_path, url):
    driver = sql_driver.SQLAlchemyDriver(
        make_conf(tmp_path, **{'database.connection': url}))
    try:
        migrations.migrate(driver, '0001')
        assert 'ix_jobs_terms_path' in _indexes(url)
        for i in range(12):
            driver.create('jobs', f'job{i:02d}', P, 'u', i, {
                'client_id': f'node_{i % 3}',
                'description': 'Nightly' if i % 2 else 'weekly',
                'job_schedule': {'status': ['scheduled', 'running'][i % 2],
                                 'pid': i, 'result': 'fail' if i == 4
                                 else ''},
                'x.y': i % 2, 'a': {'x.y': i % 2}})
        before = _answers(driver)
        assert all(before), before

        migrations.migrate(driver, '0002')
        assert driver.describe_schema()['revision'] == '0002'
        assert _indexes(url) == sorted(['ix_jobs_terms_key',
                                        'ix_jobs_terms_num',
                                        'ix_jobs_terms_doc'])
        assert _answers(driver) == before

        migrations.migrate(driver, '0001', downgrade=True)
        assert 'ix_jobs_terms_path' in _indexes(url)
        assert _answers(driver) == before
    finally:
        driver.close()


def _statistics(path):
    """Tables with SQLite planner statistics; None without the table."""
    import sqlite3
    conn = sqlite3.connect(path)
    try:
        if not conn.execute("SELECT count(*) FROM sqlite_master "
                            "WHERE name = 'sqlite_stat1'").fetchone()[0]:
            return None
        return {row[0] for row in conn.execute(
            'SELECT DISTINCT tbl FROM sqlite_stat1')}
    finally:
        conn.close()


def test_sqlite_keeps_planner_statistics(tmp_path, monkeypatch):
    """Without statistics SQLite walks a whole project to find a client's
    jobs; db sync makes them, and writers refresh them now and then."""
    import sqlite3
    path = tmp_path / 's.sqlite'
    driver = sql_driver.SQLAlchemyDriver(
        make_conf(tmp_path, **{'database.connection': f'sqlite:///{path}'}))
    try:
        driver.upgrade_schema()
        assert _statistics(path) is not None
        conn = sqlite3.connect(path)
        conn.execute('DROP TABLE sqlite_stat1')
        conn.commit()
        conn.close()
        assert _statistics(path) is None
        monkeypatch.setattr(sql_sqlite.WriterQueue, 'CHECKPOINT_EVERY', 5)
        for i in range(5):
            driver.create('jobs', f'j{i}', P, 'u', i, {'client_id': 'c'})
        # the first checkpoint of the process analyzes what is stored
        assert {'jobs', 'jobs_terms'} <= _statistics(path)
    finally:
        driver.close()
