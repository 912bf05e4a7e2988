"""Fixtures of the storage tests."""

import pytest


@pytest.fixture(params=['sqlite', 'postgresql', 'mariadb'])
def url(request, tmp_path):
    """A database of each SQL engine (the migration tests)."""
    if request.param == 'sqlite':
        return f'sqlite:///{tmp_path}/m.sqlite'
    return request.getfixturevalue(f'{request.param}_url')
