"""Fixtures for the tests that drive the real OpenStack clients.

They run against ``keystone_api`` (a real freezer-api behind a real
Keystone, found by the clients in the Keystone catalog), each test as a
fresh user of a fresh project so that no test sees another's documents.
"""

import uuid

import pytest

from tests.clients import helpers


@pytest.fixture
def new_account(keystone_api):
    """A fresh member of a fresh project: ``new_account(label)``."""

    def make(label='clients', role='member'):
        return keystone_api.keystone.new_account(
            f'{label}-{uuid.uuid4().hex[:10]}', role)

    return make


@pytest.fixture
def account(new_account):
    return new_account()


@pytest.fixture
def library(openstack_clients, keystone_api, tmp_path):
    """Start freezerclient workers: ``library(account, **options)``."""
    started = []

    def start(account, **options):
        name = options.pop('name', f'library-{len(started)}')
        client = helpers.LibraryClient(
            openstack_clients, account, keystone_api.keystone.auth_url,
            str(tmp_path), name=name, **options)
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


@pytest.fixture
def cli(openstack_clients, keystone_api, tmp_path):
    """The ``freezer`` CLI as ``account``: ``cli(account)``."""
    return lambda account: helpers.Cli(
        openstack_clients, account, keystone_api.keystone.auth_url,
        str(tmp_path))


@pytest.fixture
def service(keystone_api):
    """Plain HTTP views of the API: ``service(account)``."""
    return lambda account: helpers.Service(keystone_api, account)
