"""``freezer-manage db ...`` against real SQLite and PostgreSQL stores."""

import io
import json
import os
import subprocess

import pytest

from freezer_api.cmd import manage
from freezer_api.storage import base
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


class Recording:
    """A driver seen through a proxy that notes every name asked of it."""

    def __init__(self, driver, used):
        self._driver = driver
        self._used = used

    def __getattr__(self, name):
        self._used.add(name)
        return getattr(self._driver, name)


def test_manage_uses_only_what_the_driver_interface_declares(
        tmp_path, monkeypatch):
    # A method freezer-manage probes for (getattr with a default) but the
    # interface does not declare shows up here as a name outside it.
    monkeypatch.setenv('HOME', str(tmp_path))
    config = str(servers.write_config(tmp_path / 'c.conf',
                                      f'sqlite:///{tmp_path}/c.sqlite'))
    load_driver = manage.storage.load_driver
    used = set()
    monkeypatch.setattr(manage.storage, 'load_driver',
                        lambda *a, **kw: Recording(load_driver(*a, **kw),
                                                   used))
    for action in ('sync', 'update', 'show', 'update-settings', 'remove'):
        assert run('-y', '--config-file', config, 'db', action)[0] == 0
    assert run('-y', '-e', '--config-file', config, 'db', 'sync')[0] == 0
    declared = {name for name in dir(base.StorageDriver)
                if not name.startswith('_')}
    assert used and used <= declared, used - declared


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


# -- the elasticsearch driver, on a real server ------------------------------

KINDS = ('backups', 'clients', 'jobs', 'actions', 'sessions')


@pytest.fixture
def es_config(tmp_path, monkeypatch, elasticsearch_index):
    monkeypatch.setenv('HOME', str(tmp_path))

    def write(name='freezer-api.conf', extra=''):
        return str(servers.write_config(
            tmp_path / name, f'sqlite:///{tmp_path}/unused.sqlite',
            extra=elasticsearch_index.config() + extra))
    write.index = elasticsearch_index
    return write


def es_show(config, *options):
    code, out = run('--config-file', config, 'db', 'show', *options)
    assert code == 0
    return json.loads(out)


def no_questions(monkeypatch):
    def ask(prompt):
        raise AssertionError(f'asked {prompt!r}')
    monkeypatch.setattr('builtins.input', ask)


@pytest.mark.elasticsearch
def test_es_sync_show_update_remove(es_config, monkeypatch, capsys):
    config = es_config()
    described = es_show(config)
    assert described['exists'] is False
    assert described['index'] == es_config.index.index
    no_questions(monkeypatch)
    assert run('--config-file', config, 'db', 'sync') == (
        0, 'The store is up to date.\n')
    (index,) = es_show(config)['indices'].values()
    assert set(KINDS) <= set(index['mappings']['properties'])
    # the index exists: sync asks before updating its mappings
    monkeypatch.setattr('builtins.input', lambda prompt: 'n')
    assert run('--config-file', config, 'db', 'sync')[0] == 1
    assert 'Aborted' in capsys.readouterr().err
    monkeypatch.setattr('builtins.input', lambda prompt: 'y')
    assert run('--config-file', config, 'db', 'sync')[0] == 0
    no_questions(monkeypatch)
    assert run('-y', '--config-file', config, 'db', 'sync')[0] == 0
    assert run('--config-file', config, 'db', 'update')[0] == 0
    # remove asks; a no changes nothing
    monkeypatch.setattr('builtins.input', lambda prompt: 'no')
    assert run('--config-file', config, 'db', 'remove')[0] == 1
    assert es_show(config)['exists'] is True
    assert run('--config-file', config, 'db', 'remove', '-y') == (
        0, 'The store was removed.\n')
    assert es_show(config)['exists'] is False
    assert es_config.index.describe() is None
    no_questions(monkeypatch)
    code, out = run('--config-file', config, 'db', 'remove')
    assert code == 0 and 'Nothing to remove' in out


@pytest.mark.elasticsearch
def test_es_one_mapping(es_config, monkeypatch, capsys):
    config = es_config()
    no_questions(monkeypatch)
    # options after the action; a missing index is created whole
    assert run('db', 'sync', '-m', 'jobs', '--config-file', config)[0] == 0
    (index,) = es_show(config)['indices'].values()
    assert set(KINDS) <= set(index['mappings']['properties'])
    (index,) = es_show(config, '--mapping', 'jobs')['indices'].values()
    properties = index['mappings']['properties']
    assert 'jobs' in properties and 'backups' not in properties
    assert properties['jobs']['properties']['job_id']['type'] == 'keyword'
    assert run('db', 'update', '--mapping', 'sessions',
               '--config-file', config)[0] == 0
    assert run('-m', 'nonsense', '--config-file', config, 'db',
               'show')[0] == 2
    assert 'unknown mapping' in capsys.readouterr().err


@pytest.mark.elasticsearch
def test_es_erase_then_sync(es_config, monkeypatch):
    from freezer_api.storage.elasticsearch import driver as es_driver
    from tests.storage import contract

    config = es_config()
    assert run('-y', '--config-file', config, 'db', 'sync')[0] == 0
    driver = es_driver.ElasticsearchDriver(contract.make_conf(
        {'elasticsearch': es_config.index.options}))
    try:
        contract.add(driver, 'jobs', 'j')
        monkeypatch.setattr('builtins.input', lambda prompt: 'y')
        assert run('-e', '--config-file', config, 'db', 'sync')[0] == 0
        assert es_show(config)['exists'] is True
        assert contract.list_all(driver, 'jobs', contract.ALL) == []
        no_questions(monkeypatch)
        contract.add(driver, 'jobs', 'j')
        assert run('db', 'sync', '--erase', '-y', '--config-file',
                   config)[0] == 0
        assert contract.list_all(driver, 'jobs', contract.ALL) == []
    finally:
        driver.close()


@pytest.mark.elasticsearch
def test_es_update_settings(es_config, monkeypatch):
    config = es_config()
    assert run('-y', '--config-file', config, 'db', 'update-settings')[0] \
        == 1  # no index yet
    assert run('-y', '--config-file', config, 'db', 'sync')[0] == 0
    (index,) = es_show(config)['indices'].values()
    assert index['settings']['number_of_replicas'] == '0'
    two = es_config('two.conf', 'number_of_replicas = 1\n')
    assert run('--config-file', two, 'db', 'update-settings') == (
        0, 'Settings updated.\n')
    (index,) = es_show(config)['indices'].values()
    assert index['settings']['number_of_replicas'] == '1'


@pytest.mark.elasticsearch
def test_es_failure_exits_non_zero_without_backend_text(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('HOME', str(tmp_path))
    port = servers.free_port()
    conf = servers.write_config(
        tmp_path / 'bad.conf', f'sqlite:///{tmp_path}/unused.sqlite',
        extra=('\n[storage]\ndriver = elasticsearch\n\n[elasticsearch]\n'
               f'hosts = http://127.0.0.1:{port}\nretries = 0\n'))
    for action in ('sync', 'show', 'remove', 'update-settings'):
        assert run('-y', '--config-file', str(conf), 'db', action)[0] == 1
        err = capsys.readouterr().err
        assert 'failed' in err and 'Traceback' not in err
        assert str(port) not in err and 'urllib3' not in err


@pytest.mark.elasticsearch
def test_es_console_script(tmp_path, es_config):
    config = es_config()
    env = servers.clean_env(tmp_path)
    script = os.path.join(servers.BIN, 'freezer-manage')
    synced = subprocess.run([script, 'db', 'sync', '-y', '--config-file',
                             config], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert synced.returncode == 0, synced.stderr
    shown = subprocess.run([script, '--config-file', config, 'db', 'show'],
                           env=env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)['exists'] is True
    declined = subprocess.run([script, '--config-file', config, 'db',
                               'remove'], env=env, capture_output=True,
                              text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    assert declined.returncode == 1
