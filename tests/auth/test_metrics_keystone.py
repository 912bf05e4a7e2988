"""GET /metrics behind keystonemiddleware, over a real Keystone: an admin
token reads the metrics from anywhere, a member's token does not, and
the configured Prometheus address needs no token."""

import uuid

import pytest

from tests.auth import pipeline
from tests.metrics import helpers

PROMETHEUS = '192.0.2.10'
ELSEWHERE = '198.51.100.7'


@pytest.fixture
def api(tmp_path, keystone):
    return pipeline.load(tmp_path, keystone, config_extra=f"""
[metrics]
enabled = true
multiprocess_dir = {helpers.process_dir()}
allowed_addresses = {PROMETHEUS}/32
""")


def scrape(api, token=None, remote_addr=ELSEWHERE):
    headers = {'X-Auth-Token': token} if token else {}
    return api.http.simulate_get('/metrics', headers=headers,
                                 remote_addr=remote_addr)


def test_admin_token_reads_the_metrics(api, keystone):
    answer = scrape(api, keystone.token(keystone.admin))
    assert answer.status_code == 200, answer.text
    assert 'freezer_api_documents{kind="jobs"}' in answer.text


def test_member_token_is_denied(api, keystone):
    member = keystone.new_account(f'p-{uuid.uuid4().hex[:10]}', 'member')
    answer = scrape(api, keystone.token(member))
    assert answer.status_code == 403
    assert 'freezer_api' not in answer.text


def test_no_or_bad_token_is_401_except_from_prometheus(api):
    assert scrape(api).status_code == 401
    assert scrape(api, token='not-a-token').status_code == 401
    answer = scrape(api, remote_addr=PROMETHEUS)
    assert answer.status_code == 200, answer.text
    assert 'freezer_api_documents' in answer.text
