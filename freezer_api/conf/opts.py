"""Entry point for oslo-config-generator (namespace ``freezer-api``)."""

from freezer_api import conf as conf_pkg


def list_opts():
    groups: dict[str, list] = {}
    for module in conf_pkg.CONF_MODULES:
        for group, opts in module.list_opts().items():
            groups.setdefault(group, []).extend(opts)
    # DEFAULT first, then the groups by name
    return sorted(groups.items(),
                  key=lambda item: (item[0] != 'DEFAULT', item[0]))
