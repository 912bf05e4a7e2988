"""Revision 0006 (cursors) on a store written at revision 0005: the audit
trail stays, the cursor table appears empty and takes leases at once;
downgrading removes it and nothing else."""

from freezer_api.core import audit
from freezer_api.storage.sqlalchemy import driver as sql_driver
from tests.conftest import make_conf
from tests.storage import migrations

P = 'project-a'


def test_upgrade_from_0005_adds_the_cursor_table(tmp_path, url):
    driver = sql_driver.SQLAlchemyDriver(
        make_conf(tmp_path, **{'database.connection': url}))
    try:
        driver.drop_schema()
        migrations.migrate(driver, '0005')
        assert 'cursors' not in migrations.tables(url)
        sealed = driver.atomic(lambda txn: txn.append_audit(
            P, [{'id': 'i', 'project_id': P, 'at': 1}], audit.seal))

        migrations.migrate(driver, '0006')
        assert 'cursors' in migrations.tables(url)
        assert driver.audit_chain(P, 0, 10) == sealed
        assert driver.get_cursor('sending', P) is None
        assert driver.lease_cursor('sending', P, 'h', 1, 2).position == 0

        migrations.migrate(driver, '0005', downgrade=True)
        assert 'cursors' not in migrations.tables(url)
        assert driver.audit_chain(P, 0, 10) == sealed
    finally:
        driver.drop_schema()
        driver.close()
