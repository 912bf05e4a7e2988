"""The upstream API test suite, freezer-tempest-plugin, against this service.

The plugin's API tests (``freezer_tempest_plugin.tests.freezer_api.api``,
34 tests in release 3.5.0) run with tempest against ``keystone_api``: a
real freezer-api under uwsgi with ``auth_strategy = keystone`` and
``[centralized_scheduler] enabled = true``, found in the catalog of a real
Keystone as service type ``backup``. Tempest makes its own projects and
users through Keystone's admin account (dynamic credentials). Every test
must pass; the failures are printed with their tracebacks otherwise.
"""

import pytest

from tests.fixtures import keystone as keystone_fixture
from tests.fixtures import tempest

# What freezer-tempest-plugin 3.5.0 holds under its API tests.
EXPECTED_COUNT = 34


def test_every_upstream_api_test_passes(tempest_venv, keystone_api,
                                        tmp_path):
    keystone = keystone_api.keystone
    config = tempest.write_config(str(tmp_path / 'tempest.conf'), keystone,
                                  keystone.admin, keystone_fixture.REGION)
    listed = tempest_venv.list_tests(config)
    names = sorted({test_id.split('[', 1)[0] for test_id in listed})
    assert len(names) == EXPECTED_COUNT, names

    results, stderr = tempest_venv.run(config)

    passed = sorted(r.name for r in results if r.status == 'success')
    problems = [r for r in results if r.status not in ('success', 'exists')]
    missing = sorted(set(names) - {r.name for r in results})
    if problems or missing or passed != names:
        report = '\n\n'.join(r.report() for r in problems)
        pytest.fail(f'{len(passed)} of {len(names)} upstream API tests '
                    f'passed.\nNot run: {missing}\n\n{report}\n\n'
                    f'stderr of the run:\n{stderr[-5000:]}', pytrace=False)
