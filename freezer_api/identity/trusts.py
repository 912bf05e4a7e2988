"""Keystone trusts from a job's user to the central scheduler's user.

A central freezer-scheduler lists the jobs of every project and acts on
each through a trust-scoped token (``user_credentials.trust_id``). The
trust is made with the user's own token, as Keystone requires, delegates
``[centralized_scheduler] trusts_delegated_roles`` on the job's project to
the service user named by the ``[centralized_scheduler]`` credentials, and
impersonates the user, so that everything the scheduler writes is owned by
the job's user. One trust per user and project is reused: it is looked up
in Keystone before a new one is made.
"""

import logging
import threading
import time

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import loading as ks_loading

from freezer_api.identity import errors

LOG = logging.getLogger(__name__)

GROUP = 'centralized_scheduler'
IDENTITY = {'service_type': 'identity', 'interface': 'public',
            'version': (3, 0)}
# A trust found or made is remembered this long; Keystone is asked again
# afterwards, so that a trust the user deleted is replaced.
CACHE_SECONDS = 300


class KeystoneTrusts:
    """Find or make the trust of a (user, project) for central schedulers."""

    def __init__(self, conf, clock=time.monotonic):
        section = conf[GROUP].auth_section
        if section:
            # NOTE: the section named (e.g. keystone_authtoken) may not be
            # registered yet: auth_token registers it after the app loads.
            ks_loading.register_auth_conf_options(conf, section)
        auth = ks_loading.load_auth_from_conf_options(conf, GROUP)
        if auth is None:
            raise RuntimeError(
                '[centralized_scheduler] enabled = true needs the central '
                'scheduler\'s credentials in [centralized_scheduler] (for '
                'instance auth_section = keystone_authtoken)')
        self._session = ks_loading.load_session_from_conf_options(
            conf, GROUP, auth=auth)
        self._roles = sorted(conf.centralized_scheduler.
                             trusts_delegated_roles)
        self._clock = clock
        self._lock = threading.Lock()
        self._cache = {}
        self._trustee = None

    # -- Keystone calls ----------------------------------------------------

    def _call(self, method, path, token, **kwargs):
        """An identity API call made with the *user's* token."""
        try:
            resp = self._session.request(
                path, method, endpoint_filter=IDENTITY, authenticated=False,
                headers={'X-Auth-Token': token}, raise_exc=False, **kwargs)
        except ks_exceptions.ClientException as exc:
            LOG.error('Keystone unreachable for trusts: %s', exc)
            raise errors.Unavailable('The identity service is unavailable; '
                                     'retry later.')
        if resp.status_code >= 500:
            LOG.error('Keystone %s %s: %s %s', method, path,
                      resp.status_code, resp.text[:500])
            raise errors.Unavailable('The identity service is unavailable; '
                                     'retry later.')
        return resp

    def trustee_user_id(self):
        if self._trustee is None:
            try:
                self._trustee = self._session.get_user_id()
            except ks_exceptions.ClientException as exc:
                LOG.error('Cannot authenticate the central scheduler user: '
                          '%s', exc)
                raise errors.Unavailable('The identity service is '
                                         'unavailable; retry later.')
        return self._trustee

    @staticmethod
    def _candidate(trust, trustee, project_id):
        return (trust.get('trustee_user_id') == trustee
                and trust.get('project_id') == project_id
                and trust.get('impersonation') is True
                and trust.get('expires_at') is None
                and trust.get('remaining_uses') is None)

    def _delegates_roles(self, token, trust_id):
        # NOTE: Keystone's trust list leaves out the roles.
        resp = self._call('GET', f'/OS-TRUST/trusts/{trust_id}', token)
        if resp.status_code != 200:
            return False
        roles = {role.get('name')
                 for role in resp.json()['trust'].get('roles') or []}
        return roles.issuperset(self._roles)

    def _find(self, token, user_id, project_id, trustee):
        resp = self._call('GET', '/OS-TRUST/trusts', token,
                          params={'trustor_user_id': user_id})
        if resp.status_code != 200:
            return None  # not allowed to list: make a new one
        for trust in resp.json().get('trusts', []):
            if self._candidate(trust, trustee, project_id) and (
                    self._delegates_roles(token, trust['id'])):
                return trust['id']
        return None

    def _create(self, token, user_id, project_id, trustee):
        body = {'trust': {
            'trustor_user_id': user_id, 'trustee_user_id': trustee,
            'project_id': project_id, 'impersonation': True,
            'allow_redelegation': False,
            'roles': [{'name': name} for name in self._roles]}}
        resp = self._call('POST', '/OS-TRUST/trusts', token, json=body)
        if resp.status_code == 201:
            trust_id = resp.json()['trust']['id']
            LOG.info('Made trust %s: user %s delegates %s on project %s to '
                     'the central scheduler', trust_id, user_id,
                     ','.join(self._roles), project_id)
            return trust_id
        try:
            reason = resp.json()['error']['message']
        except (ValueError, KeyError, TypeError):
            reason = resp.text[:200]
        raise errors.Refused(
            f'Keystone refused to let user {user_id} delegate the roles '
            f'{", ".join(self._roles)} on project {project_id} to the '
            f'central scheduler: {reason}')

    # -- the interface core uses -------------------------------------------

    def trust_id(self, token, user_id, project_id):
        """The id of a trust the central scheduler can act through."""
        if not token:
            raise errors.Refused(
                'Jobs for a central scheduler need a Keystone token')
        key = (user_id, project_id)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        trustee = self.trustee_user_id()
        trust_id = (self._find(token, user_id, project_id, trustee)
                    or self._create(token, user_id, project_id, trustee))
        with self._lock:
            self._cache[key] = (trust_id, now + CACHE_SECONDS)
        return trust_id
