"""mypy finds no type error in ``freezer_api`` (configuration in
pyproject.toml, ``[tool.mypy]``; ``tox -e mypy`` runs the same check)."""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, 'freezer_api')


def modules():
    return sum(1 for _, _, files in os.walk(PACKAGE)
               for name in files if name.endswith('.py'))


def test_mypy_finds_no_type_error():
    checked = subprocess.run(
        [sys.executable, '-m', 'mypy', '--no-color-output',
         '--show-error-codes'],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert checked.returncode == 0, checked.stdout[-5000:] + checked.stderr
    # a check that checked nothing fails: every module of the package
    found = re.search(r'no issues found in (\d+) source files',
                      checked.stdout)
    assert found, checked.stdout
    assert int(found.group(1)) == modules()
