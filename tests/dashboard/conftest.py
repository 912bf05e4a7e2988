"""Fixtures for the dashboard tests: Horizon with freezer-web-ui, driven by
headless Chromium, against ``keystone_api`` (a real freezer-api behind the
real Keystone; the plugin finds it in the catalog as service type
``backup``).

``horizon`` (session)
    Horizon served on loopback (``tests.dashboard.horizon``).
``dashboard``
    ``dashboard(account)``: a fresh Chromium (Debian's ``chromium`` and
    ``chromium-driver``, driven by Selenium) logged in through Horizon's
    login form as ``account``. Every page it shows is screenshotted into a
    folder per test; the folder is kept, and its path printed, only when
    the test fails (``FREEZER_TEST_ARTIFACTS`` chooses where it goes;
    ``FREEZER_TEST_KEEP_SCREENSHOTS=1`` keeps it for passing tests too).
``account`` / ``new_account``
    A fresh member of a fresh project, as in ``tests/clients``.
``service``
    The API seen with plain HTTP and an account's token.

After each test, the lines that test added to Horizon's log and to the
API's uwsgi log are checked: no error or traceback in Horizon's, no 5xx
in the API's.
"""

import os
import re
import shutil
import tempfile
import uuid

import pytest

from tests.clients import helpers as client_helpers
from tests.dashboard import browser
from tests.dashboard import horizon as horizon_module

# NOTE: this catalog has no Network service, so Horizon's admin RBAC panel
# logs at ERROR that it cannot ask Neutron which extensions exist, on
# every page, and the Project overview (which needs Compute) answers 403
# after login. Neither concerns the plugin.
HORIZON_LOG_NOISE = (
    re.compile(r'ERROR openstack_dashboard\.dashboards\.admin\.'
               r'rbac_policies\.panel Call to list enabled services failed'),
)
HORIZON_LOG_ERROR = re.compile(
    r'^\S+ \S+ (ERROR|CRITICAL) |Traceback|Internal Server Error|'
    r'WARNING horizon\.exceptions', re.M)
UWSGI_STATUS = re.compile(r'^\[pid: .*?\] .*? (GET|POST|PUT|PATCH|DELETE|'
                          r'HEAD|OPTIONS) (\S+) => .*\(HTTP/1\.\d (\d{3})\)',
                          re.M)


def artifacts_root():
    # NOTE: not under pytest's basetemp, which a later pytest run (another
    # session on the machine) may delete while the folder is wanted.
    return (os.environ.get('FREEZER_TEST_ARTIFACTS') or
            os.path.join(tempfile.gettempdir(),
                         'freezer-api-dashboard-artifacts'))


@pytest.fixture(scope='session')
def horizon(keystone_api, tmp_path_factory):
    venv = horizon_module.ensure_venv()
    server = horizon_module.HorizonServer(
        venv, keystone_api.keystone, tmp_path_factory.mktemp('horizon'))
    yield server
    server.stop()


class LogWatch:
    """The part of a log file written since ``mark()``."""

    def __init__(self, path):
        self.path = str(path)
        self.offset = 0
        self.mark()

    def _size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def mark(self):
        self.offset = self._size()

    def new(self):
        try:
            with open(self.path, 'rb') as handle:
                handle.seek(self.offset)
                return handle.read().decode(errors='replace')
        except OSError:
            return ''


class ServerLogs:
    """What Horizon and the API logged during one test."""

    def __init__(self, horizon, keystone_api):
        self.horizon = LogWatch(horizon.log_path)
        self.api = LogWatch(keystone_api.server.log_path)

    def mark(self):
        self.horizon.mark()
        self.api.mark()

    def horizon_errors(self):
        lines = []
        for line in self.horizon.new().splitlines():
            if HORIZON_LOG_ERROR.search(line) and not any(
                    noise.search(line) for noise in HORIZON_LOG_NOISE):
                lines.append(line)
        return lines

    def api_requests(self):
        """(method, path, status) of each request the API answered."""
        return [(m.group(1), m.group(2), int(m.group(3)))
                for m in UWSGI_STATUS.finditer(self.api.new())]

    def api_refusals(self):
        return [r for r in self.api_requests() if r[2] >= 400]

    def problems(self, horizon=True):
        problems = []
        errors = self.horizon_errors() if horizon else []
        if errors:
            problems.append('Horizon logged errors:\n' + '\n'.join(errors))
        failed = [r for r in self.api_requests() if r[2] >= 500]
        if failed:
            problems.append('freezer-api answered 5xx:\n' + '\n'.join(
                f'{m} {p} -> {s}' for m, p, s in failed))
        return problems

    def check(self):
        """No Horizon error and no API 5xx since the last mark."""
        problems = self.problems()
        if problems:
            pytest.fail('\n\n'.join(problems), pytrace=False)

    def check_api(self):
        """No API 5xx since the last mark."""
        problems = self.problems(horizon=False)
        if problems:
            pytest.fail('\n\n'.join(problems), pytrace=False)


@pytest.fixture
def server_logs(horizon, keystone_api):
    logs = ServerLogs(horizon, keystone_api)
    yield logs
    logs.check()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.dashboard_failed = True


@pytest.fixture
def dashboard(request, horizon, server_logs):
    """``dashboard(account)``: a browser logged in as ``account``."""
    folder = os.path.join(artifacts_root(),
                          re.sub(r'[^\w.-]+', '_', request.node.name))
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    started = []

    def start(account):
        name = f'{len(started)}-{account.username}'
        ui = browser.Dashboard(horizon.url, os.path.join(folder, name))
        started.append(ui)
        ui.login(account)
        return ui

    yield start
    # NOTE: server_logs checks the logs after this teardown; keep the
    # screenshots when that check will fail too.
    failed = (getattr(request.node, 'dashboard_failed', False) or
              bool(server_logs.problems()))
    for ui in started:
        if failed:
            ui.screenshot('at-failure')
        ui.quit()
    if failed or os.environ.get('FREEZER_TEST_KEEP_SCREENSHOTS'):
        print(f'\nDashboard screenshots of {request.node.name}: {folder}')
    else:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def new_account(keystone_api):
    def make(label='dashboard', role='member'):
        return keystone_api.keystone.new_account(
            f'{label}-{uuid.uuid4().hex[:10]}', role)

    return make


@pytest.fixture
def account(new_account):
    return new_account()


@pytest.fixture
def service(keystone_api):
    """Plain HTTP views of the API: ``service(account)``."""
    return lambda account: client_helpers.Service(keystone_api, account)
