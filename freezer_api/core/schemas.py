"""JSON Schemas of the five documents and the validator used by the core.

They close the holes of upstream's schemas (spec §5.1): arrays and objects
are typed, ``hold_off`` and session state are checked, ids are anchored.
"""

import functools
import re
from typing import Any

import fastjsonschema
import jsonschema

from freezer_api.core.errors import InvalidInput

# NOTE: no \w or \d in patterns: in JSON Schema (ECMA 262) they are
# ASCII, in Python's re every script's letters and digits, so the service
# took ids that its own OpenAPI document refuses (schemathesis found "ë").
# Explicit ASCII classes mean the same in both.
ID_CHARS = r'[A-Za-z0-9_-]'
ID_PATTERN = rf'^{ID_CHARS}+$'
FQDN = (r'(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)'
        r'(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*')
CLIENT_ID_PATTERN = rf'^(?:{ID_CHARS}+_)?' + FQDN + r'$'
# NOTE: hosts named with underscores exist in the wild; a strict FQDN rule
# would lock their schedulers out, so only the character set is checked.
HOSTNAME_PATTERN = r'^[A-Za-z0-9_.-]{1,255}$'
DATETIME_PATTERN = (r'^[+-]?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:'
                    r'[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?$')
INTERVAL_PATTERN = (r'^(?:continuous|[0-9]+ +(?:weeks?|days?|hours?|minutes?|'
                    r'seconds?))$')

JOB_STATUSES = ['', 'completed', 'stop', 'scheduled', 'running',
                'aborting', 'removed']
JOB_EVENTS = ['', 'stop', 'start', 'abort', 'remove']
JOB_RESULTS = ['', 'success', 'fail', 'aborted']
SESSION_STATUSES = ['active', 'running', 'completed']
SESSION_RESULTS = ['', 'success', 'fail', 'aborted']
BACKUP_STATUSES = ['available', 'creating', 'restoring', 'deleting',
                   'error']

SUPPORTED = {
    'supported_actions': ['backup', 'restore', 'info', 'admin', 'exec'],
    'supported_modes': ['fs', 'mongo', 'mysql', 'sqlserver', 'cinder',
                        'glance', 'cindernative', 'nova'],
    'supported_storages': ['local', 'swift', 'ssh', 's3', 'ftp', 'ftps'],
    'supported_engines': ['tar', 'rsync', 'rsyncv2', 'nova', 'osbrick',
                          'glance'],
}

_int = {'type': 'integer'}
_str = {'type': 'string'}
_id = {'type': 'string', 'pattern': ID_PATTERN, 'maxLength': 255}
_datetime = {'type': 'string', 'pattern': DATETIME_PATTERN}

SCHEDULE = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'time_created': _int,
        'time_started': _int,
        'time_ended': _int,
        'status': {'enum': JOB_STATUSES},
        'event': {'enum': JOB_EVENTS},
        'result': {'enum': JOB_RESULTS},
        'current_pid': {'type': ['integer', 'null']},
        'schedule_date': _datetime,
        'schedule_interval': {'type': 'string',
                              'pattern': INTERVAL_PATTERN},
        'schedule_start_date': _datetime,
        'schedule_end_date': _datetime,
        'schedule_year': {'type': 'string', 'pattern': r'^[0-9]{4}$'},
        'schedule_month': _str,
        'schedule_day': _str,
        'schedule_week': _str,
        'schedule_day_of_week': _str,
        'schedule_hour': _str,
        'schedule_minute': _str,
        'schedule_second': _str,
        # the IANA zone of the scheduler host (core/schedule.py); unknown
        # names are refused by the job rules with a clearer message
        'schedule_timezone': {'type': 'string', 'minLength': 1,
                              'maxLength': 64},
    },
}

# NOTE: null means "not set" in a freezer_action (as for action_defaults):
# the web UI sends action, mode, storage, engine and backup_name as null
# when an action lacks them (freezer-web-ui 19.0.0, api._sanitize_action).
_str_or_null = {'type': ['string', 'null']}
_id_or_null = {'type': ['string', 'null'], 'pattern': ID_PATTERN}

FREEZER_ACTION = {
    'type': 'object',
    'properties': {
        'action': _id_or_null,
        'mode': _id_or_null,
        'src_file': _str_or_null,
        'path_to_backup': _str_or_null,
        'backup_name': _str_or_null,
        'container': _str_or_null,
        'restore_abs_path': _str_or_null,
        'storage': _str_or_null,
        'engine': _str_or_null,
    },
}

ACTION_BODY = {
    'freezer_action': FREEZER_ACTION,
    'max_retries': {'type': 'integer', 'minimum': 0},
    'max_retries_interval': {'type': 'integer', 'minimum': 0},
    'mandatory': {'type': 'boolean'},
    'action_id': _id,
}

# NOTE: a job action given by ``action_id`` alone refers to an existing
# action, whose freezer_action the job then stores (spec D11).
JOB_ACTION = {
    'type': 'object',
    'anyOf': [{'required': ['freezer_action']},
              {'required': ['action_id']}],
    'properties': ACTION_BODY,
}

# Longest run_lease or rpo a job may ask for: ten years.
MAX_SECONDS = 10 * 365 * 86400

JOB_PROPERTIES = {
    'job_id': _id,
    'client_id': {'type': 'string', 'pattern': CLIENT_ID_PATTERN,
                  'maxLength': 255},
    'description': _str,
    'session_id': {'type': 'string', 'pattern': rf'^{ID_CHARS}*$'},
    'session_tag': {'type': 'integer', 'minimum': 0},
    'session_name': _str,
    'job_schedule': SCHEDULE,
    'job_actions': {'type': 'array', 'items': JOB_ACTION},
    'user_id': _str,
    'project_id': _str,
    # backup health (issue 15): the longest expected run and the recovery
    # point objective, in seconds
    'run_lease': {'type': 'integer', 'minimum': 1, 'maximum': MAX_SECONDS},
    'rpo': {'type': 'integer', 'minimum': 1, 'maximum': MAX_SECONDS},
    # set by the server only (a trust for a central scheduler)
    'user_credentials': {'type': 'object',
                         'properties': {'trust_id': _str}},
}

JOB: dict[str, Any] = {
    'type': 'object',
    'additionalProperties': False,
    'required': ['client_id', 'job_actions', 'job_schedule'],
    'properties': JOB_PROPERTIES,
}

JOB_PATCH = {
    'type': 'object',
    'additionalProperties': False,
    'properties': JOB_PROPERTIES,
}

ACTION = {
    'type': 'object',
    'required': ['freezer_action'],
    'properties': ACTION_BODY,
}

ACTION_PATCH = {
    'type': 'object',
    'properties': ACTION_BODY,
}

SESSION_JOB = {
    'type': 'object',
    'properties': {
        'client_id': _str,
        'status': _str,
        'result': _str,
        'time_started': _int,
        'time_ended': _int,
    },
}

SESSION_PROPERTIES = {
    'session_id': _id,
    'session_tag': {'type': 'integer', 'minimum': 0},
    'description': _str,
    # NOTE: any integer, as upstream; 0 or less means no hold-off window.
    'hold_off': _int,
    'schedule': SCHEDULE,
    'status': {'enum': SESSION_STATUSES},
    'result': {'enum': SESSION_RESULTS},
    'time_start': _int,
    'time_end': _int,
    'time_started': _int,
    'time_ended': _int,
    'last_start': _str,
    'jobs': {'type': 'object', 'additionalProperties': SESSION_JOB},
}

SESSION = {
    'type': 'object',
    'required': ['schedule'],
    'properties': SESSION_PROPERTIES,
}

SESSION_PATCH = {
    'type': 'object',
    'properties': SESSION_PROPERTIES,
}

_supported = {name: {'type': 'array', 'items': {'enum': values},
                     'uniqueItems': True}
              for name, values in SUPPORTED.items()}

CLIENT_EDITABLE = {
    'hostname': {'type': 'string', 'pattern': HOSTNAME_PATTERN},
    'description': _str,
    **_supported,
}

CLIENT: dict[str, Any] = {
    'type': 'object',
    'required': ['client_id'],
    'properties': {
        'client_id': {'type': 'string', 'pattern': CLIENT_ID_PATTERN,
                      'maxLength': 255},
        'uuid': {'type': 'string', 'pattern': ID_PATTERN},
        'is_central': {'type': 'boolean'},
        **CLIENT_EDITABLE,
    },
}

CLIENT_PATCH = {
    'type': 'object',
    'additionalProperties': False,
    'properties': CLIENT_EDITABLE,
}


def _nullable(kind):
    return {'type': [kind, 'null']}


_nonempty = {'type': 'string', 'minLength': 1}

BACKUP_METADATA: dict[str, Any] = {
    'type': 'object',
    'required': ['container', 'backup_name'],
    'anyOf': [{'required': ['hostname'],
               'properties': {'hostname': _nonempty}},
              {'required': ['host_name'],
               'properties': {'host_name': _nonempty}}],
    'properties': {
        'container': _nonempty,
        'backup_name': _nonempty,
        'hostname': _str,
        'host_name': _str,
        'time_stamp': _nullable('number'),
        'level': _nullable('number'),
        'curr_backup_level': _nullable('number'),
        'max_level': _nullable('number'),
        'mode': _nullable('string'),
        'fs_real_path': _nullable('string'),
        'vol_snap_path': _nullable('string'),
        'total_broken_links': _nullable('number'),
        'total_fs_files': _nullable('number'),
        'total_directories': _nullable('number'),
        'backup_size_uncompressed': _nullable('number'),
        'backup_size_compressed': _nullable('number'),
        'compression_alg': _nullable('string'),
        'encrypted': _nullable('boolean'),
        'client_os': _nullable('string'),
        'broken_links': {'type': ['array', 'null'], 'items': _str},
        'excluded_files': {'type': ['array', 'null'], 'items': _str},
        'cli': _nullable('string'),
        'version': _nullable('string'),
        'job_id': _nullable('string'),
    },
}

# What a PATCH may change: the status, and the metadata (deep-merged, then
# checked again as BACKUP_METADATA). Server fields are dropped before.
BACKUP_PATCH = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {'status': {'enum': BACKUP_STATUSES},
                   'backup_metadata': {'type': 'object'}},
}


# NOTE: JSON Schema patterns are ECMA 262 regexes, where ``$`` (no
# multiline flag) is the end of the string. Python's ``$`` also matches
# before a final newline, so ``^[\w-]+$`` let ``"id\n"`` through. Every
# unescaped ``$`` is read as ``\Z``, as fastjsonschema already does, so the
# two checks agree.
_DOLLAR = re.compile(r'(?<!\\)\$')


@functools.cache
def whole_string_regex(pattern):
    """``pattern`` compiled with ``$`` matching only at the very end."""
    return re.compile(_DOLLAR.sub(r'\\Z', pattern))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, 'string') and not whole_string_regex(
            pattern).search(instance):
        yield jsonschema.ValidationError(
            f'{instance!r} does not match {pattern!r}')


_Validator = jsonschema.validators.extend(jsonschema.Draft7Validator,
                                          {'pattern': _pattern})


class _Checks:
    """The compiled check and the validator of one schema, made once."""

    def __init__(self, schema: dict):
        _Validator.check_schema(schema)
        self.schema = schema  # keeps ``id(schema)`` from being reused
        self.fast = fastjsonschema.compile(schema)
        self.full = _Validator(schema)


# id(schema) -> its checks. Schemas are dicts, which are not hashable;
# they are the module's constants, never changed once defined.
_CHECKS: dict[int, _Checks] = {}


def _checks_of(schema: dict) -> _Checks:
    checks = _CHECKS.get(id(schema))
    if checks is None or checks.schema is not schema:
        # NOTE: two threads may both compile it; either result is right.
        checks = _CHECKS[id(schema)] = _Checks(schema)
    return checks


def _describe(error):
    where = '/'.join(str(part) for part in error.absolute_path)
    message = error.message
    if error.validator == 'anyOf' and not where:
        message = ("one of 'hostname' or 'host_name' is required and must "
                   "be a non-empty string")
    elif error.validator == 'anyOf' and error.schema is JOB_ACTION:
        message = ("give a 'freezer_action', or the 'action_id' of an "
                   "existing action")
    if len(message) > 300:
        message = message[:300] + '...'
    return f'{where}: {message}' if where else message


def validate(schema: dict, document) -> None:
    """Raise ``InvalidInput`` naming the first rule ``document`` breaks.

    ``schema`` is one of the schemas of this module (the object, not its
    name: ``schemas.validate(schemas.JOB, doc)``).

    PERF: jsonschema walks a job in about 0.25 ms, a tenth of a PATCH; a
    compiled check of the same schema takes a few microseconds. It only
    lets valid documents through early: whatever it refuses, jsonschema
    judges and describes, so the decision and the message stay
    jsonschema's (tests/core/test_schemas_fast.py checks they agree).
    """
    if not isinstance(schema, dict):
        raise TypeError(f'validate takes a schema object, not '
                        f'{type(schema).__name__} {schema!r:.40}')
    checks = _checks_of(schema)
    try:
        checks.fast(document)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    error = jsonschema.exceptions.best_match(checks.full.iter_errors(document))
    if error is not None:
        raise InvalidInput(_describe(error))
