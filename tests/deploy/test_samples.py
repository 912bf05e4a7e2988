"""The checked-in samples are what the generators make today.

etc/freezer/freezer-api.conf.sample and etc/freezer/policy.yaml.sample
are generated (``tox -e genconfig``, ``tox -e genpolicy``), never edited
by hand: each is regenerated here with the command tox.ini gives, into a
temporary file, and must be identical.
"""

import configparser
import difflib
import os
import shlex
import subprocess

import pytest

from tests.deploy.conftest import REPO
from tests.fixtures import servers


def tox_command(env):
    """The command of tox environment ``env``, as a list of arguments."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(REPO, 'tox.ini'))
    lines = [line for line in
             parser[f'testenv:{env}']['commands'].splitlines()
             if line.strip()]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def output_file(argv):
    """The sample a generator command writes (its --output-file)."""
    if '--output-file' in argv:
        return argv[argv.index('--output-file') + 1]
    # oslo-config-generator may take it from its own config file.
    config = argv[argv.index('--config-file') + 1]
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(os.path.join(REPO, config))
    return parser['DEFAULT']['output_file']


@pytest.mark.parametrize('env', ['genconfig', 'genpolicy'])
def test_sample_is_up_to_date(env, tmp_path):
    argv = tox_command(env)
    sample = output_file(argv)
    fresh = tmp_path / os.path.basename(sample)
    # NOTE: on the command line --output-file wins over the generator's
    # config file.
    if '--output-file' in argv:
        argv[argv.index('--output-file') + 1] = str(fresh)
    else:
        argv += ['--output-file', str(fresh)]
    argv[0] = os.path.join(servers.BIN, argv[0])
    proc = subprocess.run(argv, cwd=REPO, env=servers.clean_env(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    with open(os.path.join(REPO, sample)) as handle:
        checked_in = handle.read().splitlines(keepends=True)
    diff = ''.join(difflib.unified_diff(
        checked_in, fresh.read_text().splitlines(keepends=True),
        fromfile=sample, tofile='regenerated'))
    assert not diff, (f'{sample} is stale; run "tox -e {env}" and commit '
                      f'the result:\n{diff}')
