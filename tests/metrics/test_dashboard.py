"""The shipped Grafana dashboard asks only for metrics the service
exports, and shows every one of them."""

import json
import os
import re

import falcon.testing
import pytest

from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api.metrics import figures
from freezer_api.metrics import store
from freezer_api.storage import errors as storage_errors
from tests.conftest import make_conf
from tests.metrics import helpers

BACKENDS = ('sqlite',)
DASHBOARD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'etc', 'grafana', 'freezer-api.json')

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r'\{[^}]*\}')
_RANGE = re.compile(r'\[[^\]]*\]')
_GROUPING = re.compile(
    r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)')
# Grafana's label_values(metric, label): the label is no metric
_LABEL_VALUES = re.compile(r'\blabel_values\s*\(\s*([^,)]*)(?:,[^)]*)?\)')
_IDENT = re.compile(r'(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*')
_KEYWORDS = {'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan'}


def metric_names(expr):
    """The metric names a PromQL expression (or label_values()) reads."""
    text = _LABEL_VALUES.sub(r'\1', expr)
    text = _STRING.sub(' ', text)
    text = _MATCHERS.sub(' ', text)
    text = _RANGE.sub(' ', text)
    text = _GROUPING.sub(' ', text)
    names = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end():].lstrip()
        if rest.startswith('(') or match.group().lower() in _KEYWORDS:
            continue  # a function or an aggregation, or a keyword
        names.add(match.group())
    return names


def queries(dashboard):
    """Every PromQL expression of the dashboard, with where it is."""
    found = []
    for panel in dashboard['panels']:
        for target in panel.get('targets', ()):
            found.append((f'panel {panel["title"]!r}', target['expr']))
    for variable in dashboard['templating']['list']:
        if variable['type'] == 'query':
            query = variable['query']
            found.append((f'variable {variable["name"]}',
                          query['query'] if isinstance(query, dict)
                          else query))
    return found


@pytest.mark.parametrize('expr, names', [
    ('sum by (le, route) (rate(a_bucket{x="y", z=~"$v"}[$__rate_interval]))',
     {'a_bucket'}),
    ('a_total / ignoring(status) b_total > bool 0.5e3',
     {'a_total', 'b_total'}),
    ('histogram_quantile(0.99, sum without (pid) (c))', {'c'}),
    ('label_values(freezer_backup_runs, project)', {'freezer_backup_runs'}),
])
def test_metric_names_of_an_expression(expr, names):
    assert metric_names(expr) == names


@pytest.fixture
def exported(tmp_path, storage, clock, policy_enforcer, monkeypatch):
    """The sample names of a scrape of a service that answered requests,
    met a store error, and has every health figure provided."""
    monkeypatch.setattr(store, 'READING_SHARE', 0.0)
    conf = make_conf(tmp_path, **{
        'metrics.enabled': True,
        'metrics.multiprocess_dir': helpers.process_dir(),
        'metrics.allowed_addresses': ['127.0.0.1'],
        'metrics.store_cache_seconds': 0.0})
    client = falcon.testing.TestClient(context.NoAuthMiddleware(
        app_module.create_app(conf, storage, enforcer=policy_enforcer,
                              clock=clock), conf))
    assert client.simulate_get('/v1/clients').status_code == 200
    real_list = storage.list

    def unavailable(*args, **kwargs):
        raise storage_errors.Unavailable('down')

    monkeypatch.setattr(storage, 'list', unavailable)
    assert client.simulate_get('/v1/clients').status_code == 503
    monkeypatch.setattr(storage, 'list', real_list)

    def every_family(storage):
        return {name: [({label: 'x' for label in labels}, 1)]
                for name, (labels, _) in figures.FAMILIES.items()}

    figures.provider(every_family)
    try:
        text = client.simulate_get('/metrics', remote_addr='127.0.0.1').text
    finally:
        figures.unregister(every_family)
    return {name for name, _ in helpers.parse(text)}


def test_every_query_names_an_exported_metric(exported):
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    found = queries(dashboard)
    assert len(found) > 10
    unknown = [(where, name) for where, expr in found
               for name in sorted(metric_names(expr))
               if name not in exported]
    assert unknown == []
    for where, expr in found:
        assert metric_names(expr), f'{where} names no metric: {expr}'


def test_every_exported_metric_is_on_the_dashboard(exported):
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    shown = set().union(*(metric_names(expr)
                          for _, expr in queries(dashboard)))
    families = {re.sub(r'_(total|bucket|sum|count)$', '', name)
                for name in exported}
    shown_families = {re.sub(r'_(total|bucket|sum|count)$', '', name)
                      for name in shown}
    assert families - shown_families == set()


def test_panels_are_laid_out_and_unique(exported):
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    ids = [panel['id'] for panel in dashboard['panels']]
    assert len(ids) == len(set(ids))
    for panel in dashboard['panels']:
        grid = panel['gridPos']
        assert grid['x'] + grid['w'] <= 24, panel['title']
