"""Revision 0004 (audit trail) on a store written at revision 0002: the
documents stay, the audit tables appear empty and take records at once;
downgrading removes them and nothing else."""

from freezer_api.core import audit
from freezer_api.storage.base import Scope
from freezer_api.storage.sqlalchemy import driver as sql_driver
from tests.conftest import make_conf
from tests.storage import migrations

P = 'project-a'
AUDIT_TABLES = {'audit_records', 'audit_heads', 'audit_events'}


def test_upgrade_from_0002_adds_the_audit_tables(tmp_path, url):
    driver = sql_driver.SQLAlchemyDriver(
        make_conf(tmp_path, **{'database.connection': url}))
    try:
        driver.drop_schema()
        migrations.migrate(driver, '0002')
        assert 'audit_records' not in migrations.tables(url)
        driver.create('jobs', 'job1', P, 'u', 1, {'client_id': 'n'})

        migrations.migrate(driver, '0004')
        assert AUDIT_TABLES <= migrations.tables(url)
        assert driver.get('jobs', 'job1', Scope(P)).doc == {'client_id': 'n'}
        assert driver.audit_projects() == []
        sealed = driver.atomic(lambda txn: txn.append_audit(
            P, [{'id': 'i', 'project_id': P, 'at': 1}], audit.seal))
        assert driver.audit_chain(P, 0, 10) == sealed

        migrations.migrate(driver, '0002', downgrade=True)
        assert not AUDIT_TABLES & migrations.tables(url)
        assert driver.get('jobs', 'job1', Scope(P)).version == 1
    finally:
        driver.drop_schema()
        driver.close()
