"""What the distributions hold: the service and its data files, nothing
else of the source tree (``bench/`` imports ``tests.fixtures``; neither is
installed).

The wheel and the sdist are built with the project's own build backend
(setuptools, PEP 517 hooks) from a copy of the tracked files: no network,
no build isolation, a few seconds.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# setuptools logs on stdout: the names go to a file
BUILD = '''
import sys
from setuptools import build_meta
out, names_file = sys.argv[1:]  # build_meta rewrites sys.argv
wheel = build_meta.build_wheel(out)
sdist = build_meta.build_sdist(out)
with open(names_file, 'w') as names:
    names.write(wheel + '\\n' + sdist + '\\n')
'''

# The files the service reads at run time from inside the package.
PACKAGE_DATA = (
    'freezer_api/etc/freezer-paste.ini',
    'freezer_api/storage/sqlalchemy/migrations/alembic.ini',
    'freezer_api/storage/sqlalchemy/migrations/script.py.mako',
    'freezer_api/storage/sqlalchemy/migrations/versions/0001_initial.py',
)


def tracked_files():
    listed = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, check=True,
                            capture_output=True, timeout=60).stdout
    return [name for name in listed.decode().split('\0') if name]


@pytest.fixture(scope='module')
def distributions(tmp_path_factory):
    source = tmp_path_factory.mktemp('source')
    for name in tracked_files():
        if os.path.isfile(os.path.join(REPO, name)):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), source / name)
    out = tmp_path_factory.mktemp('dist')
    names = tmp_path_factory.mktemp('names') / 'built'
    built = subprocess.run([sys.executable, '-c', BUILD, str(out), names],
                           cwd=source, capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, sdist = names.read_text().split()
    with zipfile.ZipFile(out / wheel) as archive:
        wheel_names = archive.namelist()
    with tarfile.open(out / sdist) as archive:
        # without the leading "freezer_api-<version>/"
        sdist_names = [name.partition('/')[2]
                       for name in archive.getnames()]
    return wheel_names, sdist_names


def test_the_wheel_installs_the_service_only(distributions):
    wheel_names, _ = distributions
    tops = {name.split('/')[0] for name in wheel_names}
    strays = {top for top in tops if top != 'freezer_api'
              and not top.endswith(('.dist-info', '.data'))}
    assert strays == set()
    assert 'freezer_api' in tops
    for name in PACKAGE_DATA:
        assert name in wheel_names
    assert any(name.endswith('.data/scripts/freezer-api-wsgi')
               for name in wheel_names)


def test_the_sdist_leaves_out_bench_and_tests(distributions):
    _, sdist_names = distributions
    assert not [name for name in sdist_names
                if name.split('/')[0] in ('bench', 'tests')]
    for name in PACKAGE_DATA:
        assert name in sdist_names


def test_one_paste_file():
    # the service, DevStack and the docs use the copy in the package
    copies = [name for name in tracked_files()
              if os.path.basename(name) == 'freezer-paste.ini']
    assert copies == ['freezer_api/etc/freezer-paste.ini']
