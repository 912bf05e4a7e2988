"""Fixtures of the HTTP tests.

``api`` runs a test once per API version (v1 user-scoped, v2
project-scoped) as user ``alice`` of project ``proj-a`` with roles
``member,reader`` (not admin, so the v2 URL-project rule is exercised).
"""

import pytest

from tests.api import helpers


@pytest.fixture(params=['v1', 'v2'])
def version(request):
    return request.param


@pytest.fixture
def api(client, version):
    return helpers.Api(client, version)


@pytest.fixture
def v1(client):
    return helpers.Api(client, 'v1')


@pytest.fixture
def v2(client):
    return helpers.Api(client, 'v2')
