"""The layers import only downwards (DEVELOPERS guide, ANCHORS pattern 6).

api -> core -> storage and identity; api -> metrics -> storage;
cmd and bootstrap on top. Storage knows nothing of
HTTP or of the rules; the rules know nothing of HTTP.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'freezer_api'

# layer -> imports it must never make
FORBIDDEN = {
    'storage': ('freezer_api.core', 'freezer_api.api', 'freezer_api.cmd',
                'freezer_api.bootstrap', 'freezer_api.policies', 'falcon',
                'paste'),
    'core': ('freezer_api.api', 'freezer_api.cmd', 'freezer_api.bootstrap',
             'falcon', 'paste', 'freezer_api.storage.sqlalchemy',
             'freezer_api.storage.elasticsearch', 'sqlalchemy',
             'elasticsearch', 'freezer_api.identity.trusts', 'keystoneauth1'),
    'identity': ('freezer_api.core', 'freezer_api.api', 'freezer_api.cmd',
                 'freezer_api.bootstrap', 'freezer_api.policies',
                 'freezer_api.storage', 'falcon', 'paste'),
    'api': ('freezer_api.cmd', 'freezer_api.bootstrap',
            'freezer_api.storage.sqlalchemy',
            'freezer_api.storage.elasticsearch', 'sqlalchemy',
            'elasticsearch'),
    # what the traffic and the store add up to: no HTTP, no engine
    'metrics': ('freezer_api.api', 'freezer_api.cmd', 'freezer_api.bootstrap',
                'falcon', 'paste', 'freezer_api.storage.sqlalchemy',
                'freezer_api.storage.elasticsearch', 'sqlalchemy',
                'elasticsearch'),
    'conf': ('freezer_api.api', 'freezer_api.core', 'freezer_api.storage',
             'freezer_api.cmd'),
}


def imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def modules(layer):
    return sorted((PACKAGE / layer).rglob('*.py'))


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer):
    assert modules(layer), f'no modules found in {layer}'
    offences = [
        f'{path.relative_to(PACKAGE)} imports {name}'
        for path in modules(layer) for name in imports(path)
        if any(name == bad or name.startswith(bad + '.')
               for bad in FORBIDDEN[layer])]
    assert offences == []
