"""``freezer-manage``: create, migrate, inspect and remove the store.

Usage: ``freezer-manage [options] db {sync,update,remove,show,
update-settings} [options]``. Options may stand before or after the
``db`` command (upstream only took them before, spec D18).

Exit status: 0 done, 1 failed or declined, 2 bad usage.
"""

import argparse
import json
import logging
import sys

from freezer_api import storage
from freezer_api.cmd import common
from freezer_api.storage.base import KINDS

LOG = logging.getLogger(__name__)

ACTIONS = ('sync', 'update', 'remove', 'show', 'update-settings')


class Declined(Exception):
    """The operator answered no."""


class UsageError(Exception):
    """An option makes no sense for this store."""


def _add_options(parser, suppress):
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument('--config-file', action='append',
                        default=argparse.SUPPRESS if suppress else [],
                        metavar='PATH',
                        help='Configuration file (repeatable).')
    parser.add_argument('--config-dir', default=default, metavar='DIR',
                        help='Directory of *.conf files.')
    parser.add_argument('-y', '--yes', action='store_true',
                        default=argparse.SUPPRESS if suppress else False,
                        help='Answer yes to every question.')
    parser.add_argument('-e', '--erase', action='store_true',
                        default=argparse.SUPPRESS if suppress else False,
                        help='With sync: remove everything first.')
    parser.add_argument('-m', '--mapping', default=default, metavar='NAME',
                        help='Elasticsearch only: sync, update or show the '
                             'mapping of one kind of document (backups, '
                             'clients, jobs, actions or sessions).')
    parser.add_argument('--debug', action='store_true',
                        default=argparse.SUPPRESS if suppress else False,
                        help='Log debugging output.')


def build_parser():
    parser = argparse.ArgumentParser(
        prog='freezer-manage',
        description='Manage the freezer-api store (tables of the '
                    'sqlalchemy driver, or the index of the elasticsearch '
                    'driver).')
    _add_options(parser, suppress=False)
    commands = parser.add_subparsers(dest='command', metavar='db')
    commands.required = True
    db = commands.add_parser('db', help='Store management.')
    db.add_argument('action', choices=ACTIONS, help=(
        'sync: create or migrate; update: sync without questions; '
        'remove: delete everything; show: describe what exists; '
        'update-settings: apply index settings (elasticsearch).'))
    _add_options(db, suppress=True)
    return parser


def confirm(question, assume_yes):
    if assume_yes:
        return
    try:
        answer = input(f'{question} [y/N] ')
    except EOFError:
        answer = ''
    if answer.strip().lower() not in ('y', 'yes'):
        raise Declined()


def _kinds(options):
    """Kinds named by ``-m/--mapping`` (elasticsearch only), or None."""
    if options.mapping is None or options.driver_name != 'elasticsearch':
        return None
    if options.mapping not in KINDS:
        raise UsageError(f'unknown mapping {options.mapping!r}: choose one '
                         f'of {", ".join(KINDS)}')
    return [options.mapping]


def _sync(driver, options, out, assume_yes):
    kinds = _kinds(options)
    erased = False
    if options.erase:
        confirm('Erase every freezer document and table?', assume_yes)
        driver.drop_schema()
        erased = True
    if not erased and driver.schema_exists():
        what = (f'the {options.mapping} mapping' if kinds
                else 'the mappings')
        confirm(f'The index exists: update {what}?', assume_yes)
    driver.upgrade_schema(kinds=kinds)
    print('The store is up to date.', file=out)


def run(action, driver, options, out):
    if action == 'sync':
        _sync(driver, options, out, options.yes)
    elif action == 'update':
        _sync(driver, options, out, True)
    elif action == 'remove':
        # None: the driver does not tell, so ask as if it existed
        if driver.schema_exists() is False:
            print('Nothing to remove: the index does not exist.', file=out)
            return
        confirm('Remove every freezer document and table?', options.yes)
        driver.drop_schema()
        print('The store was removed.', file=out)
    elif action == 'show':
        description = driver.describe_schema(kinds=_kinds(options))
        print(json.dumps(description, indent=2, sort_keys=True), file=out)
    elif action == 'update-settings':
        if driver.update_settings():
            print('Settings updated.', file=out)
        else:
            print(f'update-settings: nothing to do for the '
                  f'{options.driver_name} driver.', file=out)


def main(argv=None, out=sys.stdout):
    parser = build_parser()
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args = []
    for path in options.config_file:
        args += ['--config-file', path]
    if options.config_dir:
        args += ['--config-dir', options.config_dir]
    if options.debug:
        args.append('--debug')
    try:
        conf = common.load_config(args)
        if options.mapping is not None and conf.storage.driver != (
                'elasticsearch'):
            print('--mapping applies to the elasticsearch driver only; '
                  'ignored.', file=sys.stderr)
        options.driver_name = conf.storage.driver
        driver = storage.load_driver(conf, prepare=False)
        try:
            run(options.action, driver, options, out)
        finally:
            driver.close()
    except Declined:
        print('Aborted: nothing was changed.', file=sys.stderr)
        return 1
    except UsageError as ex:
        print(f'freezer-manage: {ex}', file=sys.stderr)
        return 2
    except Exception as ex:  # noqa: BLE001 - report any failure, exit 1
        LOG.debug('freezer-manage failed', exc_info=True)
        print(f'freezer-manage db {options.action} failed: '
              f'{type(ex).__name__}: {ex}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
