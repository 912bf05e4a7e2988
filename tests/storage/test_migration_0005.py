"""Revision 0005 (the job summaries of backup health) on a store written at
revision 0004: the kind gets its table and search index as the models
describe them; downgrading removes them and nothing else."""

from freezer_api.storage import query as q
from freezer_api.storage.base import Scope
from freezer_api.storage.sqlalchemy import driver as sql_driver
from freezer_api.storage.sqlalchemy import models
from tests.conftest import make_conf
from tests.storage import migrations

TABLES = ('job_health', 'job_health_terms')


def test_upgrade_from_0004_adds_the_job_summaries(tmp_path, url):
    driver = sql_driver.SQLAlchemyDriver(
        make_conf(tmp_path, **{'database.connection': url}))
    try:
        migrations.migrate(driver, '0004')
        assert not set(TABLES) & migrations.tables(url)
        driver.create('runs', 'r1', 'p', 'u', 5, {'job_id': 'job1'})

        migrations.migrate(driver, '0005')
        for table in TABLES:
            assert migrations.indexes(url, table) == sorted(
                index.name for index in models.metadata.tables[
                    table].indexes)
        driver.create('job_health', 'job1', 'p', 'u', 0, {
            'job_id': 'job1', 'settle_due': 2 ** 53, 'recent': '1a2bs'})
        due = driver.list('job_health', Scope(None), q.Query(
            ranges=(q.Range('settle_due', high=2 ** 53),)), 10, 0)
        assert [record.id for record in due] == ['job1']

        migrations.migrate(driver, '0004', downgrade=True)
        assert not set(TABLES) & migrations.tables(url)
        assert driver.get('runs', 'r1', Scope('p')).doc == {'job_id': 'job1'}
    finally:
        driver.close()
