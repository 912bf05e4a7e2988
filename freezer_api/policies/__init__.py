"""oslo.policy rules in code, one module per resource (spec §6.2, D16)."""

import itertools

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
        base.rule('jobs:get_all_projects', base.ADMIN,
                  'List the jobs of every project (all_projects=true).',
                  [('GET', PATHS['jobs'][0] + '?all_projects=true')]),
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


def list_rules():
    """Every rule, for the enforcer and oslopolicy-sample-generator."""
    return list(itertools.chain(
        base.rules,
        base.crud_rules('backups', PATHS['backups']),
        _clients(),
        _jobs(),
        _actions(),
        _sessions(),
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
