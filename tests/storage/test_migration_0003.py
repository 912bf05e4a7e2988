"""Revision 0003 (runs and presence) on a store written at revision 0002.

The documents of the older kinds stay; the new kinds get tables and
indexes as the models describe them, and answer searches; downgrading
removes them and nothing else.
"""

from freezer_api.storage import query as q
from freezer_api.storage.base import Scope
from freezer_api.storage.sqlalchemy import driver as sql_driver
from freezer_api.storage.sqlalchemy import models
from tests.conftest import make_conf
from tests.storage import migrations

P = 'project-a'
NEW = ('runs', 'presence')


def _model_indexes(table):
    return sorted(index.name for index in models.metadata.tables[
        table].indexes)


def test_upgrade_from_0002_adds_the_health_kinds(tmp_path, url):
    driver = sql_driver.SQLAlchemyDriver(
        make_conf(tmp_path, **{'database.connection': url}))
    try:
        migrations.migrate(driver, '0002')
        assert not set(NEW) & migrations.tables(url)
        driver.create('jobs', 'job1', P, 'u', 1, {'client_id': 'node_1'})

        migrations.migrate(driver, '0003')
        assert driver.describe_schema()['revision'] == '0003'
        for kind in NEW:
            for table in (kind, f'{kind}_terms'):
                assert migrations.indexes(url, table) == _model_indexes(table)
        assert driver.get('jobs', 'job1', Scope(P)).doc == {
            'client_id': 'node_1'}
        driver.create('runs', 'r1', P, 'u', 5, {
            'job_id': 'job1', 'result': 'success', 'at': 100})
        driver.create('presence', 'p1', P, 'u', 5, {
            'client_id': 'node_1', 'last_seen': 100})
        found = driver.list('runs', Scope(P), q.Query(
            match=(q.Term('job_id', 'job1'),),
            ranges=(q.Range('at', 50, 150),)), 10, 0)
        assert [record.id for record in found] == ['r1']

        migrations.migrate(driver, '0002', downgrade=True)
        assert not set(NEW) & migrations.tables(url)
        assert driver.get('jobs', 'job1', Scope(P)).doc == {
            'client_id': 'node_1'}
    finally:
        driver.close()
