"""oslo.policy rules in code, one module per resource (spec §6.2, D16)."""

import itertools
import time

from oslo_config import cfg
from oslo_policy import policy

from freezer_api.policies import base

PATHS = {
    'backups': base.paths('backups', 'backup_id'),
    'clients': base.paths('clients', 'client_id'),
    'jobs': base.paths('jobs', 'job_id'),
    'actions': base.paths('actions', 'action_id'),
    'sessions': base.paths('sessions', 'session_id'),
}


def _jobs():
    _, item = PATHS['jobs']
    extra = [
        base.rule('jobs:event:create', base.ADMIN_OR_PROJECT_MEMBER,
                  'Request start, stop or abort of a job.',
                  [('POST', item + '/event')]),
        base.rule('jobs:schedule:get', base.ADMIN_OR_PROJECT_READER,
                  'List the next run times of a job, as freezer-scheduler '
                  'computes them.',
                  [('GET', item + '/schedule')]),
        base.rule('jobs:runs:get', base.ADMIN_OR_PROJECT_READER,
                  'List the runs of a job (the run ledger): reported, '
                  'lost and missed runs, newest first.',
                  [('GET', item + '/runs')]),
        base.rule('jobs:get_all_projects', base.ADMIN,
                  'List the jobs of every project (all_projects=true).',
                  [('GET', PATHS['jobs'][0] + '?all_projects=true')]),
        base.rule('jobs:create_central_exec', base.ADMIN,
                  'Create, replace or update a job that runs an exec '
                  'action on a central scheduler (the host that holds '
                  "the service user's credentials and runs every "
                  "project's jobs).",
                  [('POST', PATHS['jobs'][0]), ('POST', item),
                   ('PATCH', item)]),
    ]
    # NOTE: POST /jobs/{job_id} (replace) is checked as jobs:create (§6.2).
    return base.crud_rules('jobs', PATHS['jobs'], extra=extra,
                           replace_is_create=True)


def _clients():
    collection, _ = PATHS['clients']
    return base.crud_rules('clients', PATHS['clients'], extra=[
        base.rule('clients:create_central', base.ADMIN,
                  'Register a central scheduler (is_central: true), whose '
                  'jobs come from every project through Keystone trusts.',
                  [('POST', collection)]),
    ])


def _actions():
    _, item = PATHS['actions']
    return base.crud_rules('actions', PATHS['actions'], extra=[
        base.rule('actions:replace', base.ADMIN_OR_PROJECT_MEMBER,
                  'Create or replace an action with a given id.',
                  [('POST', item)]),
    ])


def _sessions():
    _, item = PATHS['sessions']
    return base.crud_rules('sessions', PATHS['sessions'], extra=[
        base.rule('sessions:replace', base.ADMIN_OR_PROJECT_MEMBER,
                  'Create or replace a session with a given id.',
                  [('POST', item)]),
        base.rule('sessions:action:create', base.ADMIN_OR_PROJECT_MEMBER,
                  'Start or end a session run for one job.',
                  [('POST', item + '/action')]),
        base.rule('sessions:job:add', base.ADMIN_OR_PROJECT_MEMBER,
                  'Add a job to a session.',
                  [('PUT', item + '/jobs/{job_id}')]),
        base.rule('sessions:job:remove', base.ADMIN_OR_PROJECT_MEMBER,
                  'Remove a job from a session.',
                  [('DELETE', item + '/jobs/{job_id}')]),
    ])


def _coverage():
    path = '/v2/{project_id}/coverage'
    return [
        base.rule('coverage:get', base.ADMIN_OR_PROJECT_READER,
                  'Read backup coverage: per client and per job, the last '
                  'good run against the RPO, missed and stale runs.',
                  [('GET', path)]),
        base.rule('coverage:get_all_projects', base.ADMIN,
                  'Read the coverage of every project '
                  '(all_projects=true).',
                  [('GET', path + '?all_projects=true')]),
    ]


def _audit():
    path = '/v2/{project_id}/audit'
    return [
        base.rule('audit:get_all', base.ADMIN_OR_PROJECT_MANAGER,
                  'Read the audit trail of a project (every change made '
                  'through the API).', [('GET', path)]),
        base.rule('audit:get_all_projects', base.ADMIN,
                  'Read the audit trail of every project '
                  '(all_projects=true).',
                  [('GET', path + '?all_projects=true')]),
    ]


def _metrics():
    return [base.rule(
        'metrics:get', base.ADMIN,
        'Read the Prometheus metrics (they name projects) from an '
        'address not listed in [metrics] allowed_addresses.',
        [('GET', '/metrics')])]


def list_rules():
    """Every rule, for the enforcer and oslopolicy-sample-generator."""
    return list(itertools.chain(
        base.rules,
        base.crud_rules('backups', PATHS['backups']),
        _clients(),
        _jobs(),
        _actions(),
        _sessions(),
        _coverage(),
        _metrics(),
        _audit(),
    ))


def get_enforcer(conf=None):
    """Build an enforcer with the rules registered (also an entry point)."""
    if conf is None:
        # NOTE: oslopolicy-policy-generator and oslopolicy-checker call
        # this with no arguments and own oslo's global CONF.
        conf = cfg.CONF
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(list_rules())
    return enforcer


def _frozen(values):
    return tuple(sorted(
        (key, tuple(value) if isinstance(value, list) else value)
        for key, value in values.items()))


class CachedEnforcer:
    """An enforcer that remembers its decisions for ``ttl`` seconds.

    PERF: on every call oslo.policy looks for changed policy files (several
    ``stat`` calls) and walks the rule tree, inspecting the signature of
    each check: about a millisecond per request, more than a whole
    ``GET`` of a document. A decision depends only on the rule, the target
    and the caller's policy values, so it is kept for a moment; a changed
    policy file takes effect within ``ttl`` seconds. Everything else is
    the wrapped enforcer's.
    """

    def __init__(self, enforcer, ttl=1.0, max_entries=4096,
                 clock=time.monotonic):
        self._enforcer = enforcer
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._decisions = {}
        self._expires = 0.0

    def __getattr__(self, name):
        return getattr(self._enforcer, name)

    def enforce(self, rule, target, creds, do_raise=False, exc=None,
                *args, **kwargs):
        if do_raise or args or kwargs:
            return self._enforcer.enforce(rule, target, creds, do_raise, exc,
                                          *args, **kwargs)
        values = (creds.to_policy_values()
                  if hasattr(creds, 'to_policy_values') else creds)
        try:
            key = (rule, _frozen(target), _frozen(values))
            hash(key)
        except (AttributeError, TypeError):
            return self._enforcer.enforce(rule, target, creds)
        now = self._clock()
        if now >= self._expires:
            self._decisions = {}
            self._expires = now + self._ttl
        decisions = self._decisions
        try:
            return decisions[key]
        except KeyError:
            pass
        result = self._enforcer.enforce(rule, target, creds)
        if len(decisions) < self._max_entries:
            decisions[key] = result
        return result
