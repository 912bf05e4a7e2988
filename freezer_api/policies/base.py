"""Named check strings shared by the rules (secure RBAC, spec D16)."""

from oslo_policy import policy

ADMIN = 'role:admin'
PROJECT_READER = 'role:reader and project_id:%(project_id)s'
PROJECT_MEMBER = 'role:member and project_id:%(project_id)s'
ADMIN_OR_PROJECT_READER = f'({ADMIN}) or ({PROJECT_READER})'
ADMIN_OR_PROJECT_MEMBER = f'({ADMIN}) or ({PROJECT_MEMBER})'
PROJECT_MANAGER = 'role:manager and project_id:%(project_id)s'
ADMIN_OR_PROJECT_MANAGER = f'({ADMIN}) or ({PROJECT_MANAGER})'

RULE_ADMIN = 'context_is_admin'

rules = [
    policy.RuleDefault(
        name=RULE_ADMIN, check_str=ADMIN,
        description='Who counts as a cloud administrator.'),
]


def rule(name, check_str, description, operations):
    """Build a documented rule; ``operations`` is [(method, path), ...]."""
    return policy.DocumentedRuleDefault(
        name=name, check_str=check_str, description=description,
        operations=[{'method': method, 'path': path}
                    for method, path in operations],
        scope_types=['project'])


def crud_rules(noun, paths, extra=(), replace_is_create=False):
    """The usual get_all/create/get/update/delete rules of one noun."""
    collection, item = paths
    singular = noun[:-1]
    reads = [
        rule(f'{noun}:get_all', ADMIN_OR_PROJECT_READER,
             f'List {noun}.', [('GET', collection)]),
        rule(f'{noun}:get', ADMIN_OR_PROJECT_READER,
             f'Show one {singular}.', [('GET', item)]),
    ]
    create_operations = [('POST', collection)]
    if replace_is_create:
        create_operations.append(('POST', item))
    writes = [
        rule(f'{noun}:create', ADMIN_OR_PROJECT_MEMBER,
             f'Create a {singular}.', create_operations),
        rule(f'{noun}:update', ADMIN_OR_PROJECT_MEMBER,
             f'Update part of a {singular}.', [('PATCH', item)]),
        rule(f'{noun}:delete', ADMIN_OR_PROJECT_MEMBER,
             f'Delete a {singular}.', [('DELETE', item)]),
    ]
    return reads + writes + list(extra)


def paths(noun, id_name):
    """Both URL families of a noun, as documented operations."""
    return (f'/v2/{{project_id}}/{noun}',
            f'/v2/{{project_id}}/{noun}/{{{id_name}}}')
