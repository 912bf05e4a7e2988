"""``freezer-manage db ...`` against real SQLite and PostgreSQL stores."""

import io
import json
import os
import subprocess

import pytest

from freezer_api.cmd import manage
from tests.fixtures import servers

TABLES = {'backups', 'clients', 'jobs', 'actions', 'sessions'}


@pytest.fixture(params=['sqlite', 'postgresql'])
def config(request, tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    if request.param == 'sqlite':
        url = f'sqlite:///{tmp_path}/manage.sqlite'
    else:
        url = request.getfixturevalue('postgresql_url')
    return str(servers.write_config(tmp_path / 'freezer-api.conf', url))


def run(*argv, stdin=''):
    out = io.StringIO()
    code = manage.main(list(argv), out=out)
    return code, out.getvalue()


def tables(config):
    code, out = run('--config-file', config, 'db', 'show')
    assert code == 0
    return set(json.loads(out)['tables'])


def test_sync_show_remove_cycle(config):
    assert tables(config) == set()
    assert run('--config-file', config, 'db', 'sync') == (
        0, 'The store is up to date.\n')
    assert TABLES <= tables(config)
    # idempotent
    assert run('--config-file', config, 'db', 'update')[0] == 0
    assert run('-y', '--config-file', config, 'db', 'remove')[0] == 0
    assert tables(config) == set()


def test_options_are_accepted_after_the_action(config):
    assert run('db', 'sync', '--config-file', config)[0] == 0
    assert run('db', 'remove', '-y', '--config-file', config)[0] == 0
    assert tables(config) == set()


def test_remove_without_yes_asks_and_a_no_changes_nothing(
        config, monkeypatch, capsys):
    run('--config-file', config, 'db', 'sync')
    monkeypatch.setattr('builtins.input', lambda prompt: 'n')
    assert run('--config-file', config, 'db', 'remove')[0] == 1
    assert 'Aborted' in capsys.readouterr().err
    assert TABLES <= tables(config)
    monkeypatch.setattr('builtins.input', lambda prompt: 'yes')
    assert run('--config-file', config, 'db', 'remove')[0] == 0
    assert tables(config) == set()


def test_erase_then_sync_recreates_empty_tables(config, monkeypatch):
    run('--config-file', config, 'db', 'sync')
    monkeypatch.setattr('builtins.input', lambda prompt: 'y')
    assert run('-e', '--config-file', config, 'db', 'sync')[0] == 0
    assert TABLES <= tables(config)


def test_update_settings_is_a_no_op_for_sql(config):
    code, out = run('--config-file', config, 'db', 'update-settings')
    assert code == 0 and 'nothing to do for the sqlalchemy driver' in out


def test_failure_exits_non_zero_without_a_traceback(tmp_path, monkeypatch,
                                                    capsys):
    monkeypatch.setenv('HOME', str(tmp_path))
    port = servers.free_port()
    conf = servers.write_config(
        tmp_path / 'bad.conf',
        f'postgresql+psycopg://nobody:x@127.0.0.1:{port}/none')
    assert run('--config-file', str(conf), 'db', 'sync')[0] == 1
    err = capsys.readouterr().err
    assert 'failed' in err and 'Traceback' not in err


@pytest.mark.parametrize('argv', [[], ['db'], ['db', 'explode'],
                                  ['--bogus', 'db', 'sync']])
def test_bad_usage_exits_2(argv):
    with pytest.raises(SystemExit) as exc:
        manage.main(argv)
    assert exc.value.code == 2


def test_console_script_and_help(tmp_path):
    env = servers.clean_env(tmp_path)
    script = os.path.join(servers.BIN, 'freezer-manage')
    helped = subprocess.run([script, '-h'], env=env, capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0 and 'db' in helped.stdout
    conf = servers.write_config(tmp_path / 'c.conf',
                                f'sqlite:///{tmp_path}/c.sqlite')
    synced = subprocess.run([script, '-y', '--config-file', str(conf), 'db',
                             'sync'], env=env, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert synced.returncode == 0, synced.stderr
    declined = subprocess.run([script, '--config-file', str(conf), 'db',
                               'remove'], env=env, capture_output=True,
                              text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    assert declined.returncode == 1
