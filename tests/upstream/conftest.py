"""Fixtures of the upstream API test suite (tests.fixtures.tempest)."""

import pytest

from tests.fixtures import tempest


@pytest.fixture(scope='session')
def tempest_venv():
    return tempest.ensure_venv()
