"""``freezer-manage``: create, migrate, inspect and remove the store, and
check or trim the audit trail.

Usage: ``freezer-manage [options] db {sync,update,remove,show,
update-settings} [options]``. Options may stand before or after the
``db`` command (upstream only took them before, spec D18).
``freezer-manage [options] audit verify [--project P]`` recomputes the
hash chains and reports the first record that does not match (exit 1);
``freezer-manage [options] audit purge`` removes the records older than
``[audit] retention_days``.

Exit status: 0 done, 1 failed or declined, 2 bad usage.
"""

import argparse
import json
import logging
import sys
import time

from freezer_api import storage
from freezer_api.cmd import common
from freezer_api.core import audit
from freezer_api.storage.base import KINDS

LOG = logging.getLogger(__name__)

ACTIONS = ('sync', 'update', 'remove', 'show', 'update-settings')
AUDIT_ACTIONS = ('verify', 'purge')
# Records read per round trip while verifying.
VERIFY_PAGE = 1000


class ChainBroken(Exception):
    """A hash chain does not verify."""


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
    trail = commands.add_parser('audit', help='Audit trail.')
    trail.add_argument('action', choices=AUDIT_ACTIONS, help=(
        'verify: recompute the hash chains and report the first record '
        'that does not match; purge: remove the records older than '
        '[audit] retention_days.'))
    trail.add_argument('--project', metavar='PROJECT_ID', default=None,
                       help='verify: only this project\'s chain.')
    _add_options(trail, suppress=True)
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


def _chain(driver, project_id):
    after = 0
    while True:
        page = driver.audit_chain(project_id, after, VERIFY_PAGE)
        yield from page
        if len(page) < VERIFY_PAGE:
            return
        after = page[-1]['seq']


def verify_trail(driver, project_id, out):
    projects = ([project_id] if project_id is not None
                else driver.audit_projects())
    broken = []
    for project in projects:
        head = driver.audit_head(project)
        verdict = audit.verify(project, _chain(driver, project), head)
        if verdict.ok:
            start = ('' if verdict.first_seq in (None, 1)
                     else f', from record {verdict.first_seq} (older ones '
                          'purged)')
            print(f'project {project}: {verdict.checked} records '
                  f'verified{start}', file=out)
        else:
            broken.append(project)
            print(f'project {project}: record {verdict.broken_seq} does '
                  f'not match: {verdict.reason} ({verdict.checked} '
                  f'records before it verified)', file=out)
    if not projects:
        print('No audit records.', file=out)
    if broken:
        raise ChainBroken(', '.join(broken))


def purge_trail(driver, conf, out, clock=time.time):
    days = conf.audit.retention_days
    if days == 0:
        print('[audit] retention_days is 0: every record is kept.',
              file=out)
        return
    before = int((clock() - days * 86400) * 1_000_000)
    removed = driver.purge_audit(before)
    print(f'{removed} audit records older than {days} days removed.',
          file=out)


def run_audit(action, driver, conf, options, out):
    if action == 'verify':
        verify_trail(driver, options.project, out)
    else:
        purge_trail(driver, conf, out)


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
            if options.command == 'audit':
                run_audit(options.action, driver, conf, options, out)
            else:
                run(options.action, driver, options, out)
        finally:
            driver.close()
    except ChainBroken as ex:
        print(f'freezer-manage: the audit trail of {ex} does not verify.',
              file=sys.stderr)
        return 1
    except Declined:
        print('Aborted: nothing was changed.', file=sys.stderr)
        return 1
    except UsageError as ex:
        print(f'freezer-manage: {ex}', file=sys.stderr)
        return 2
    except Exception as ex:  # noqa: BLE001 - report any failure, exit 1
        LOG.debug('freezer-manage failed', exc_info=True)
        print(f'freezer-manage {options.command} {options.action} failed: '
              f'{type(ex).__name__}: {ex}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
