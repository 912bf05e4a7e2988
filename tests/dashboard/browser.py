"""Headless Chromium, driven by Selenium, in front of Horizon.

Debian's ``chromium`` and ``chromium-driver`` (installed by
``tools/run-tests.sh``); nothing is downloaded at test time (Selenium
Manager is never asked: the driver's path is given). Each ``Dashboard``
is a fresh browser with a fresh profile, so no cookie or cache carries
over from another test or account. Every page shown is screenshotted into
``folder`` (``NN-<what>.png``).
"""

import functools
import os
import re
import shutil
import tempfile

from selenium import webdriver
from selenium.common import exceptions as selenium_errors
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as expected
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get('FREEZER_TEST_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('FREEZER_TEST_CHROMEDRIVER',
                              '/usr/bin/chromedriver')
# Guards against a hung page; nothing asserts how fast anything is.
HANG_GUARD = 60
# Horizon's own page for an unhandled server error (DEBUG off).
SERVER_ERROR_TEXT = ('Something went wrong', 'Server error',
                     'Internal Server Error')
FORM_ERRORS = ('.modal.in .has-error, .modal.in .alert-danger, '
               '.messages .alert-danger')


# What a wait looks past: the page may be replaced while it looks.
RETRIED = (selenium_errors.NoSuchElementException,
           selenium_errors.StaleElementReferenceException)


class DashboardError(AssertionError):
    pass


def _page_replaced(error):
    """Whether ``error`` says the element looked at belongs to a page
    that has since been replaced. Debian's chromedriver reports some of
    those as an "unhandled inspector error: Node with given id does not
    belong to the document" rather than as a stale element."""
    return isinstance(error, selenium_errors.StaleElementReferenceException) \
        or 'does not belong to the document' in str(error)


def _staleness_as_stale(condition):
    """``condition``, raising a stale element for the inspector's form of
    it, so that a wait looks again instead of failing."""
    def checked(driver):
        try:
            return condition(driver)
        except selenium_errors.WebDriverException as error:
            if _page_replaced(error) and not isinstance(
                    error, selenium_errors.StaleElementReferenceException):
                raise selenium_errors.StaleElementReferenceException(
                    str(error)) from error
            raise
    return checked


def looks_again(lookup):
    """Run a read-only lookup again (after the page settles) when the page
    was replaced while it read; never used on clicks, which must not
    happen twice."""
    @functools.wraps(lookup)
    def retried(self, *args, **kwargs):
        for attempt in range(LOOKUP_ATTEMPTS):
            try:
                return lookup(self, *args, **kwargs)
            except selenium_errors.WebDriverException as error:
                if not _page_replaced(error) or \
                        attempt == LOOKUP_ATTEMPTS - 1:
                    raise
                self.settle()
    return retried


LOOKUP_ATTEMPTS = 5


class Dashboard:
    def __init__(self, base_url, folder):
        self.base_url = base_url
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self._shots = 0
        self._profile = tempfile.mkdtemp(prefix='chromium-profile-')
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ('--headless', '--no-sandbox', '--disable-gpu',
                         '--disable-quic', '--no-first-run',
                         '--disable-background-networking',
                         '--disable-component-update', '--disable-sync',
                         '--disable-dev-shm-usage',
                         f'--user-data-dir={self._profile}',
                         '--window-size=1400,1000'):
            options.add_argument(argument)
        try:
            self.driver = webdriver.Chrome(
                options=options, service=DriverService(CHROMEDRIVER))
        except BaseException:
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(HANG_GUARD)

    # -- plumbing ----------------------------------------------------------

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)

    def screenshot(self, what):
        self._shots += 1
        name = re.sub(r'[^\w.-]+', '_', what).strip('_')[:80]
        path = os.path.join(self.folder, f'{self._shots:02d}-{name}.png')
        try:
            self.driver.save_screenshot(path)
        except selenium_errors.WebDriverException:
            pass
        return path

    def wait(self, condition, what, timeout=HANG_GUARD):
        try:
            # NOTE: an element looked at while the page is being replaced
            # goes stale under the condition: look again, as for a missing one
            return WebDriverWait(
                self.driver, timeout, ignored_exceptions=RETRIED).until(
                    _staleness_as_stale(condition))
        except selenium_errors.TimeoutException:
            self.screenshot(f'timeout {what}')
            raise DashboardError(f'gave up waiting for {what} on '
                                 f'{self.driver.current_url}') from None

    def find(self, css, within=None):
        return (within or self.driver).find_element(By.CSS_SELECTOR, css)

    def find_all(self, css, within=None):
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def visible(self, css):
        return self.wait(expected.visibility_of_element_located(
            (By.CSS_SELECTOR, css)), css)

    @looks_again
    def body_text(self):
        return self.find('body').text

    def _settled(self, driver):
        ready = driver.execute_script(
            'return document.readyState === "complete" && '
            '(!window.jQuery || jQuery.active === 0)')
        return ready

    def settle(self):
        self.wait(self._settled, 'the page to load')

    def check_page(self, what):
        """Screenshot the page; fail on a server error page or an error
        message Horizon shows."""
        self.settle()
        self.screenshot(what)
        self._no_server_error(what)
        errors = self.error_messages()
        if errors:
            raise DashboardError(f'{what}: Horizon shows errors at '
                                 f'{self.driver.current_url}: {errors}')

    def _no_server_error(self, what):
        title = self.driver.title
        text = self.body_text()
        for marker in SERVER_ERROR_TEXT:
            if marker in title or marker in text[:500]:
                raise DashboardError(f'{what}: server error page at '
                                     f'{self.driver.current_url}: {title}')

    @looks_again
    def error_messages(self):
        return [element.text for element in
                self.find_all('.messages .alert-danger, .alert-danger')
                if element.text.strip()]

    @looks_again
    def success_messages(self):
        return [element.text for element in
                self.find_all('.messages .alert-success')]

    # -- pages -------------------------------------------------------------

    def login(self, account):
        self.driver.get(self.base_url + '/auth/login/')
        self.settle()
        self.screenshot('login')
        self.find('#id_username').send_keys(account.username)
        self.find('#id_password').send_keys(account.password)
        self.find('#loginBtn').click()
        self.wait(lambda d: '/auth/login' not in d.current_url,
                  'the login to finish')
        self.settle()
        self.screenshot('after-login')
        user = self.find('.navbar .dropdown-toggle[data-toggle="dropdown"],'
                         ' #profile_editor_switcher, body').text
        if account.username not in user and \
                account.username not in self.body_text():
            raise DashboardError(f'not logged in as {account.username}')

    def open(self, path, what=None):
        self.driver.get(self.base_url + path)
        self.check_page(what or path)
        return self

    def open_refused(self, path, what):
        """Open a page the account may not see: Horizon must say so (an
        error message) without a server error; return what it says."""
        self.driver.get(self.base_url + path)
        self.settle()
        self.screenshot(f'{what} refused')
        self._no_server_error(what)
        errors = self.error_messages()
        if not errors:
            raise DashboardError(f'{what}: {path} was shown without an '
                                 f'error message')
        return errors

    def ajax(self, path):
        """GET ``path`` from the page as the plugin's scripts do (the
        plugin's JSON views answer AJAX requests only): (status, body)."""
        return self.driver.execute_async_script(
            'const done = arguments[arguments.length - 1];'
            'fetch(arguments[0], {credentials: "same-origin", headers: {'
            '"X-Requested-With": "XMLHttpRequest"}})'
            '.then(r => r.text().then(t => done([r.status, t])))'
            '.catch(e => done([0, String(e)]));', self.base_url + path)

    @looks_again
    def table_rows(self, table_id=None):
        """The rows of the data table, as lists of cell texts."""
        css = (f'table#{table_id} tbody tr' if table_id
               else 'table.datatable tbody tr')
        rows = []
        for row in self.find_all(css):
            if 'empty' in (row.get_attribute('class') or ''):
                continue
            rows.append([cell.text for cell in self.find_all('td', row)])
        return rows

    @looks_again
    def row_with(self, text):
        for row in self.find_all('table.datatable tbody tr'):
            if text in row.text:
                return row
        raise DashboardError(f'no table row shows {text!r} on '
                             f'{self.driver.current_url}')

    def row_action(self, text, label):
        """Run the action ``label`` of the row showing ``text``: its
        button, or an entry of its drop-down menu."""
        row = self.row_with(text)
        for button in self.find_all('.actions_column a, .actions_column '
                                    'button', row):
            if button.text.strip() == label and button.is_displayed():
                self.click_and_wait(button)
                return
        toggles = [t for t in self.find_all('.actions_column '
                                            '.dropdown-toggle', row)
                   if t.is_displayed()]
        for toggle in toggles:
            toggle.click()
            for entry in self.find_all('.actions_column .dropdown-menu '
                                       'a, .actions_column .dropdown-menu '
                                       'button', row):
                if entry.text.strip() == label and entry.is_displayed():
                    self.click_and_wait(entry)
                    return
            toggle.click()
        self.screenshot(f'no action {label}')
        raise DashboardError(f'the row showing {text!r} has no action '
                             f'{label!r}')

    def confirm(self):
        """Accept Horizon's confirmation dialog."""
        button = self.visible('.modal.in .modal-footer .btn-danger, '
                              '.modal.in .modal-footer .btn-primary')
        self.screenshot('confirm')
        self.submit_and_wait(button, 'the confirmation')

    @looks_again
    def button(self, label):
        for element in self.find_all('a.btn, button.btn, input.btn'):
            text = (element.text or element.get_attribute('value') or '')
            if text.strip() == label and element.is_displayed():
                return element
        raise DashboardError(f'no button {label!r} on '
                             f'{self.driver.current_url}')

    # -- forms and workflows (Horizon's modals) ----------------------------

    def modal(self, what):
        modal = self.visible('.modal.in form, .modal.in')
        self.settle()
        self.screenshot(what)
        return modal

    def tab(self, label):
        for link in self.find_all('.modal.in .nav a, .nav-tabs a'):
            if link.text.strip() == label and link.is_displayed():
                link.click()
                return
        raise DashboardError(f'no tab {label!r}')

    def fill(self, field_id, value):
        element = self.find(f'#{field_id}')
        tag = element.tag_name.lower()
        kind = (element.get_attribute('type') or '').lower()
        if tag == 'select':
            Select(element).select_by_value(value)
        elif kind == 'checkbox':
            if element.is_selected() != bool(value):
                # Horizon's theme hides the box itself and styles its
                # label: click what a person clicks
                labels = (element.find_elements(By.XPATH, './ancestor::label')
                          or self.find_all(f'label[for="{field_id}"]'))
                (labels[0] if labels else element).click()
            if element.is_selected() != bool(value):
                raise DashboardError(f'could not set {field_id}')
        elif kind == 'datetime-local':
            # NOTE: typing into a datetime-local input depends on the
            # locale's field order; set it as the page's own scripts do.
            self.driver.execute_script(
                'arguments[0].value = arguments[1];'
                'arguments[0].dispatchEvent(new Event("change"));',
                element, value)
        else:
            element.clear()
            element.send_keys(str(value))

    def submit_modal(self, what):
        self.screenshot(f'{what} filled')
        button = self.find('.modal.in .modal-footer .btn-primary, '
                           '.modal.in .modal-footer input[type=submit]')
        self.submit_and_wait(button, what)

    def click_and_wait(self, element):
        """Click; wait for the page it loads, or the dialog it opens."""
        page = self.find('html')
        element.click()
        self.wait(lambda driver: expected.staleness_of(page)(driver) or
                  any(m.is_displayed() for m in self.find_all('.modal.in')),
                  'a page or a dialog')
        self.settle()

    def submit_and_wait(self, button, what):
        """Submit a dialog: Horizon then loads the next page, or shows
        the dialog again with the errors."""
        page = self.find('html')
        button.click()

        def done(driver):
            if expected.staleness_of(page)(driver):
                return 'page'
            # the form again with its errors, or Horizon's alert that the
            # request failed (a server error answering the dialog)
            if self.find_all(FORM_ERRORS):
                return 'error'
            return False

        if self.wait(done, f'{what} to be saved') == 'error':
            self.screenshot(f'{what} refused')
            errors = [e.text for e in self.find_all(FORM_ERRORS)]
            raise DashboardError(f'{what}: the form shows errors: {errors}')
        self.settle()

    def drag(self, source, target):
        """Drag ``source`` onto ``target`` the way a mouse does (jQuery UI
        sortable needs intermediate moves)."""
        chain = ActionChains(self.driver)
        chain.click_and_hold(source).pause(0.2)
        chain.move_by_offset(5, 5).pause(0.2)
        chain.move_to_element(target).pause(0.2)
        chain.move_by_offset(0, 5).pause(0.2)
        chain.release().perform()
