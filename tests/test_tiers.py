"""The fast tier leaves out exactly the tests that need a server, and the
whole suite (README, CI) leaves out nothing (tests/fixtures/tiers.py)."""

import configparser
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = ('postgresql', 'mariadb', 'elasticsearch')
SAMPLE = ['tests/storage', 'tests/cmd/test_manage.py',
          'tests/api/test_root.py']


def collect(*options, paths=SAMPLE):
    env = dict(os.environ, FREEZER_TEST_API_BACKENDS='sqlite,' + ','.join(
        ENGINES))
    done = subprocess.run(
        [sys.executable, '-m', 'pytest', '--collect-only', '-q',
         '-p', 'no:cacheprovider', *options, *paths],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    ids = [line for line in done.stdout.splitlines() if '::' in line]
    summary = done.stdout.strip().splitlines()[-1]
    return ids, summary


def on_a_server(test_id):
    # by name: the engine in the module, class or parameters, or
    # test_manage's test_es_*
    return '::test_es_' in test_id or any(
        engine in test_id.lower() for engine in ENGINES)


def test_fast_leaves_out_what_needs_a_server_and_only_that():
    everything, summary = collect()
    assert 'deselected' not in summary
    fast, fast_summary = collect('--fast')
    left_out = set(everything) - set(fast)
    assert set(fast) <= set(everything)
    # the sample has tests of both sorts
    assert fast and left_out
    assert not [test for test in fast if on_a_server(test)]
    assert not [test for test in left_out if not on_a_server(test)]
    assert f'{len(left_out)} deselected' in fast_summary


def test_fast_fails_a_test_that_starts_a_server_anyway(tmp_path):
    # e.g. through request.getfixturevalue, which collection cannot see
    test = tmp_path / 'test_sneaky.py'
    test.write_text('def test_sneaky(request):\n'
                    '    request.getfixturevalue("postgresql_server")\n')
    done = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-p', 'tests.fixtures.postgresql', '-p', 'tests.fixtures.tiers',
         '--rootdir', str(tmp_path), '-c', os.devnull, '--fast',
         str(test)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'the fast tier starts no server' in done.stdout


def test_the_whole_suite_selects_every_test():
    # what README, tox -e py3 and CI run: no option that drops tests
    dropping = re.compile(r'(^|\s)(-m|-k|--fast|--deselect|--ignore\S*)'
                          r'(\s|=|$)')
    with open(os.path.join(REPO, 'pyproject.toml')) as handle:
        addopts = re.findall(r'^addopts\s*=\s*(.*)$', handle.read(), re.M)
    assert len(addopts) == 1 and not dropping.search(addopts[0])
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(os.path.join(REPO, 'tox.ini'))
    assert tox.get('testenv', 'commands').strip() == (
        'python -m pytest {posargs}')
    with open(os.path.join(REPO, 'tools', 'run-tests.sh')) as handle:
        script = handle.read()
    assert script.rstrip().endswith('exec python -m pytest "$@"')
    with open(os.path.join(REPO, '.ci', 'run')) as handle:
        ci = handle.read()
    assert ci.rstrip().endswith('bash tools/run-tests.sh')
