"""``freezer-manage audit verify|purge`` on a real SQLite store: a trail
written through the core verifies, a changed, removed or reordered record
is reported by its seq, and purging keeps the chain verifiable."""

import io
import json

import pytest
import sqlalchemy as sa

from freezer_api import storage
from freezer_api.cmd import common
from freezer_api.cmd import manage
from freezer_api.core import audit
from freezer_api.core.base import Caller
from freezer_api.core.base import Owner
from freezer_api.core.service import Services
from freezer_api.storage.base import Scope
from tests.fixtures import servers

ACTOR = audit.Actor('alice', 'proj-a', ('member',), 'POST',
                    '/v2/{project_id}/backups', 'req-1')


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    url = f'sqlite:///{tmp_path}/manage.sqlite'
    config = str(servers.write_config(
        tmp_path / 'freezer-api.conf', url,
        extra='[audit]\nretention_days = 30\n'))
    assert run('--config-file', config, 'db', 'sync')[0] == 0
    return config, url


def run(*argv):
    out = io.StringIO()
    code = manage.main(list(argv), out=out)
    return code, out.getvalue()


def write(config, project, count, clock):
    conf = common.load_config(['--config-file', config])
    driver = storage.load_driver(conf, prepare=False)
    try:
        services = Services(audit.AuditedStorage(driver, clock=clock),
                            clock=clock)
        caller = Caller(Scope(project), Owner(project, 'alice'))
        with audit.acting(ACTOR):
            for number in range(count):
                services.actions.create(caller, {
                    'freezer_action': {'action': 'backup',
                                       'backup_name': f'b{number}'}})
    finally:
        driver.close()


def tamper(url, sql):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def test_an_untouched_trail_verifies(setup):
    config, _ = setup
    assert run('--config-file', config, 'audit', 'verify') == (
        0, 'No audit records.\n')
    write(config, 'proj-a', 3, lambda: 1_700_000_000.0)
    write(config, 'proj-b', 2, lambda: 1_700_000_000.0)
    assert run('--config-file', config, 'audit', 'verify') == (0, (
        'project proj-a: 3 records verified\n'
        'project proj-b: 2 records verified\n'))
    assert run('audit', 'verify', '--project', 'proj-b',
               '--config-file', config) == (
        0, 'project proj-b: 2 records verified\n')


@pytest.mark.parametrize('sql, seq, reason', [
    ("UPDATE audit_records SET record = replace(record, '\"alice\"', "
     "'\"mallory\"') WHERE seq = 2", 2, 'the hash does not match'),
    ('DELETE FROM audit_records WHERE seq = 2', 2, 'record 2 is missing'),
    ('UPDATE audit_records SET seq = 9 WHERE seq = 3', 3,
     'record 3 is missing'),
    ('DELETE FROM audit_records WHERE seq = 4', 4,
     'record 4 is missing (the chain head is at 4)'),
])
def test_a_changed_trail_is_reported_at_its_first_bad_record(
        setup, sql, seq, reason):
    config, url = setup
    write(config, 'proj-a', 4, lambda: 1_700_000_000.0)
    tamper(url, sql)
    code, out = run('--config-file', config, 'audit', 'verify')
    assert code == 1
    assert out.startswith(f'project proj-a: record {seq} does not match: '
                          f'{reason}'), out


def test_a_rehashed_record_breaks_the_next_link(setup):
    config, url = setup
    write(config, 'proj-a', 3, lambda: 1_700_000_000.0)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        text = conn.execute(sa.text(
            'SELECT record FROM audit_records WHERE seq = 2')).scalar()
        record = json.loads(text)
        record['user_id'] = 'mallory'
        record['hash'] = audit.record_hash(record)
        conn.execute(sa.text('UPDATE audit_records SET record = :r '
                             'WHERE seq = 2'), {'r': json.dumps(record)})
    engine.dispose()
    code, out = run('--config-file', config, 'audit', 'verify')
    assert code == 1 and 'record 3 does not match: prev_hash' in out


def test_purge_keeps_the_retention_period_and_the_chain(setup):
    config, _ = setup
    day = 86400
    now = 1_700_000_000.0
    write(config, 'proj-a', 2, lambda: now - 40 * day)
    write(config, 'proj-a', 2, lambda: now - 10 * day)
    conf = common.load_config(['--config-file', config])
    driver = storage.load_driver(conf, prepare=False)
    try:
        out = io.StringIO()
        manage.purge_trail(driver, conf, out, clock=lambda: now)
        assert out.getvalue() == (
            '2 audit records older than 30 days removed.\n')
        assert [r['seq'] for r in driver.audit_chain('proj-a', 0, 10)] == [
            3, 4]
    finally:
        driver.close()
    write(config, 'proj-a', 1, lambda: now)
    assert run('--config-file', config, 'audit', 'verify') == (0, (
        'project proj-a: 3 records verified, from record 3 (older ones '
        'purged)\n'))
    assert run('--config-file', config, 'audit', 'purge')[0] == 0
