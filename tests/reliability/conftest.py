"""Fixtures of the reliability suite (see doc/reliability.rst)."""

import pytest

from tests.reliability import figures as figures_module


@pytest.fixture
def figures(request):
    """Counters of this test, saved when the test ends (passed or not)."""
    name = request.node.name
    counters = figures_module.Figures(name)
    yield counters
    counters.save()
