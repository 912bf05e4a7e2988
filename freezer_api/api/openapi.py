"""The OpenAPI 3.1 document of the API, served at ``GET /openapi.json``.

The document is built in code, not kept as a file: every request body and
stored document schema is derived from ``freezer_api.core.schemas`` (the
schemas the core validates with), the paging bounds from
``freezer_api.core.base``, the policy rule of each operation from the
resource classes, so none of them can drift from the code. The paths are
written out here once per version prefix; ``tests/api/test_openapi.py``
checks them against ``routes.add_routes`` and validates real responses of
every operation against the document.

``python -m freezer_api.api.openapi`` prints the document.
"""

import copy
import functools
import json
import sys
from typing import Any
import zoneinfo

from freezer_api.api import actions
from freezer_api.api import backups
from freezer_api.api import clients
from freezer_api.api import health
from freezer_api.api import jobs
from freezer_api.api import middleware
from freezer_api.api import sessions
from freezer_api.api import versions
from freezer_api.api.audit import AuditTrail
from freezer_api.api.resource import Resource
from freezer_api.core import audit as core_audit
from freezer_api.core import backups as core_backups
from freezer_api.core import base as core_base
from freezer_api.core import health as core_health
from freezer_api.core import jobs as core_jobs
from freezer_api.core import schedule as core_schedule
from freezer_api.core import schemas as core
from freezer_api.core import search as core_search
from freezer_api.core import sessions as core_sessions

__all__ = ['OpenAPIDocument', 'PATH', 'document']

OPENAPI_VERSION = '3.1.0'
PATH = '/openapi.json'
V1_PREFIX = '/v1'
V2_PREFIX = '/v2/{project_id}'
SECURITY_SCHEME = 'keystoneToken'
JSON = 'application/json'
TEXT = 'text/plain'

_SCHEMAS = '#/components/schemas/'
_RESPONSES = '#/components/responses/'
_PARAMETERS = '#/components/parameters/'

IGNORED = {'description': 'Set by the server: a value sent is ignored.'}


def _ref(name):
    return {'$ref': _SCHEMAS + name}


def _derive(schema, required=(), drop_required=(), ignored=(), **props):
    """A copy of a core schema with more required keys or properties."""
    derived = copy.deepcopy(schema)
    properties = derived.setdefault('properties', {})
    for name in ignored:
        properties[name] = dict(IGNORED)
    properties.update(copy.deepcopy(props))
    wanted = [name for name in derived.get('required', [])
              if name not in drop_required]
    wanted += [name for name in required if name not in wanted]
    if wanted:
        derived['required'] = wanted
    else:
        derived.pop('required', None)
    return derived


def _wrapped_or_bare(name):
    """A client body may be sent bare or wrapped in ``{"client": ...}``."""
    return {'anyOf': [
        _ref(name),
        {'type': 'object', 'required': ['client'],
         'additionalProperties': False,
         'properties': {'client': _ref(name)}},
    ]}


def _object(required, properties, additional=False):
    return {'type': 'object', 'required': list(required),
            'additionalProperties': additional, 'properties': properties}


_string = {'type': 'string'}
_integer = {'type': 'integer'}
_version = {'type': 'integer', 'minimum': 1,
            'description': 'The document version; it grows by one on each '
                           'write. Present in single-document answers only.'}


# A search field: no empty name, no empty path step (core.search._term).
_FIELD_NAME = {'type': 'string', 'minLength': 1,
               'maxLength': core_search.MAX_FIELD_LENGTH,
               'pattern': r'^(?![\s\S]*\.\.)[^.](?:[\s\S]*[^.])?$'}


def _search(with_time):
    scalar = {'type': ['string', 'number', 'boolean', 'null'],
              'maxLength': core_search.MAX_VALUE_LENGTH}

    def terms(text):
        names = dict(_FIELD_NAME)
        entry = {'type': 'object', 'minProperties': 1,
                 'additionalProperties': scalar}
        if text:
            entry['properties'] = {'_all': {
                'type': 'string',
                'maxLength': core_search.MAX_VALUE_LENGTH}}
        else:
            names['not'] = {'const': '_all'}
        entry['propertyNames'] = names
        return {'anyOf': [{'type': 'array', 'items': entry,
                           'maxItems': core_search.MAX_TERMS}, entry]}

    properties = {
        'match': {**terms(True), 'description': (
            'Every term must hold. A dotted field is an exact path; a bare '
            'field matches at any depth; "_all" is a case-insensitive '
            'substring of any value.')},
        'match_not': {**terms(False), 'description': 'No term may hold.'},
    }
    if with_time:
        epoch = {'anyOf': [{'type': ['number', 'null']},
                           {'type': 'string',
                            'pattern': r'^\s*[+-]?[0-9]+\s*$'}],
                 'description': 'Epoch seconds, compared (inclusive) with '
                                'backup_metadata.time_stamp.'}
        properties.update(time_after=epoch, time_before=epoch)
    return {'type': ['object', 'null'], 'additionalProperties': False,
            'properties': properties}


_UTC_TIME = r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{6})?Z$'


def _with_zone_names(value):
    """Give every ``schedule_timezone`` the zones this host knows: the
    core checks a name against the time zone database, which no pattern
    can say."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == 'properties' and isinstance(item, dict) and (
                    core_schedule.TIMEZONE_FIELD in item):
                item[core_schedule.TIMEZONE_FIELD] = _ref('TimeZone')
            _with_zone_names(item)
    elif isinstance(value, list):
        for item in value:
            _with_zone_names(item)
    return value


def _schemas():
    """``components.schemas``: request bodies and documents."""
    schemas = _with_zone_names(_core_schemas())
    schemas['TimeZone'] = {
        'type': 'string', 'enum': sorted(zoneinfo.available_timezones()),
        'description': 'An IANA time zone: the local zone of the hosts '
                       'that run the job (default: the option '
                       'default_schedule_timezone).'}
    return schemas


def _core_schemas():
    server = core_base.SERVER_FIELDS
    job_actions_stored = copy.deepcopy(core.JOB['properties']['job_actions'])
    job_actions_stored['items']['required'] = (
        job_actions_stored['items'].get('required', [])
        + ['action_id', 'user_id', 'project_id'])
    action_defaults = {
        'type': ['object', 'null'],
        'description': 'Fills the keys that are missing or null in every '
                       'freezer_action of job_actions; never stored.'}
    client_info = copy.deepcopy(core.CLIENT)
    client_info['properties']['is_central'] = {
        **client_info['properties'].get('is_central', {}),
        'description': 'A scheduler that runs the jobs of every project. '
                       'true needs [centralized_scheduler] enabled (else '
                       '400) and the policy clients:create_central (else '
                       '403).'}
    session_ignored = core_sessions.SESSION_SERVER_FIELDS
    # a job action as stored: referenced actions are filled in
    job_actions_stored['items']['required'].append('freezer_action')
    # Numeric metadata fields take numeric strings too; stored as numbers.
    metadata_input = copy.deepcopy(core.BACKUP_METADATA)
    limit = core_backups.NUMBER_LIMIT
    for name in core_backups.NUMERIC_FIELDS:
        # NOTE: the service takes more numeric strings (exponents, any
        # whitespace) than this pattern says; these are always taken.
        metadata_input['properties'][name] = {
            'anyOf': [{'type': 'number', 'minimum': -limit,
                       'maximum': limit},
                      {'type': 'null'},
                      {'type': 'string', 'pattern': (
                          r'^ *[+-]?(?:[0-9]{1,18}(?:\.[0-9]*)?|'
                          r'\.[0-9]{1,18}) *$|^$')}],
            'description': 'A number; a numeric string is stored as the '
                           'number it means, "" as null. A value that '
                           'cannot mean a number, or beyond +-(2^63-1), '
                           'is a 400.'}
    metadata_patch = _derive(metadata_input, drop_required=(
        'container', 'backup_name'))
    metadata_patch.pop('anyOf')
    for name in ('hostname', 'host_name'):
        metadata_patch['properties'][name] = {'type': 'string',
                                              'minLength': 1}
    metadata_patch['description'] = (
        'Deep-merged into the stored metadata; the result must pass the '
        'rules of a new backup.')
    session_job = _derive(core.SESSION_JOB, required=[
        'client_id', 'status', 'result', 'time_started', 'time_ended'])
    backup_fields = {
        'backup_id': _string, 'user_id': _string, 'project_id': _string,
        'backup_metadata': _ref('BackupMetadata'),
        'status': {'enum': list(core.BACKUP_STATUSES)},
        '_version': _version}
    return {
        'Error': _object(['title', 'description'], {
            'title': {'type': 'string', 'minLength': 1},
            'description': {'type': 'string', 'minLength': 1}}),
        'Versions': _object(['versions'], {'versions': {
            'type': 'array', 'items': _object(
                ['id', 'status', 'updated', 'links'], {
                    'id': {'enum': ['v1', 'v2']},
                    'status': _string,
                    'updated': _string,
                    'links': {'type': 'array', 'items': _object(
                        ['href', 'rel'], {'href': _string,
                                          'rel': _string})}})}}),
        'HomeDocument': _object(['resources'], {'resources': {
            'type': 'object', 'additionalProperties': _object(
                ['href-template', 'href-vars', 'hints'], {
                    'href-template': _string,
                    'href-vars': {'type': 'object',
                                  'additionalProperties': _string},
                    'hints': {'type': 'object'}})}}),
        'Search': _search(with_time=False),
        'BackupSearch': _search(with_time=True),
        # request bodies
        'BackupMetadataInput': metadata_input,
        'BackupPatch': _derive(
            core.BACKUP_PATCH, ignored=('backup_id',) + server,
            backup_metadata=metadata_patch),
        'ClientInfo': client_info,
        'ClientPatch': _derive(core.CLIENT_PATCH,
                               ignored=('client_id', 'uuid') + server),
        'JobCreate': _derive(core.JOB, drop_required=['job_schedule'],
                             ignored=core_jobs.JOB_SERVER_FIELDS,
                             action_defaults=action_defaults),
        'JobPatch': _derive(core.JOB_PATCH,
                            ignored=core_jobs.JOB_SERVER_FIELDS,
                            action_defaults=action_defaults),
        'ActionCreate': _derive(core.ACTION, ignored=server),
        'ActionReplace': _derive(core.ACTION, ignored=('action_id',) + server),
        'ActionPatch': _derive(core.ACTION_PATCH,
                               ignored=('action_id',) + server),
        'SessionCreate': _derive(core.SESSION, ignored=session_ignored),
        'SessionPatch': _derive(core.SESSION_PATCH, ignored=session_ignored),
        'JobEvent': {
            'type': 'object', 'minProperties': 1, 'maxProperties': 1,
            'propertyNames': {'enum': list(core_jobs.EVENTS)},
            'description': 'One event name; its value is ignored '
                           '(clients send null).'},
        'SessionAction': {'oneOf': [
            _object(['start'], {'start': _object(
                ['job_id', 'current_tag'], {
                    'job_id': {'type': 'string', 'minLength': 1},
                    'current_tag': {'$ref': _SCHEMAS + 'SessionTag'}},
                additional=True)}),
            _object(['end'], {'end': _object(
                ['job_id', 'current_tag', 'result'], {
                    'job_id': {'type': 'string', 'minLength': 1},
                    'current_tag': {'$ref': _SCHEMAS + 'SessionTag'},
                    'result': {'enum': list(core_sessions.END_RESULTS)}},
                additional=True)}),
        ]},
        'SessionTag': {'anyOf': [
            {'type': 'integer', 'minimum': 0},
            {'type': 'string', 'pattern': r'^\s*[0-9]+\s*$'}]},
        # answers
        'BackupMetadata': copy.deepcopy(core.BACKUP_METADATA),
        # v2: upstream's current shape, v1: the seed's (with user_name)
        'Backup': _object(
            ['backup_id', 'user_id', 'project_id', 'status',
             'backup_metadata'], backup_fields),
        'BackupV1': _object(
            ['backup_id', 'user_id', 'user_name', 'project_id',
             'backup_metadata'], {**backup_fields, 'user_name': _string}),
        'Client': _object(['client', 'user_id', 'project_id'], {
            'client': _derive(client_info, required=[
                'uuid'] + list(core.SUPPORTED)),
            'user_id': _string, 'project_id': _string,
            '_version': _version}),
        'Job': _derive(core.JOB, required=[
            'job_id', 'user_id', 'project_id', 'session_id', 'session_tag',
            'description'], job_actions=job_actions_stored,
            user_credentials={
                'type': 'object',
                'description': 'The Keystone trust a central scheduler runs '
                               'the job with (jobs of central clients '
                               'only).',
                'properties': {'trust_id': _string}},
            _version=_version),
        'Action': _derive(core.ACTION, required=[
            'action_id', 'user_id', 'project_id'], _version=_version),
        'Session': _derive(core.SESSION, required=[
            'session_id', 'user_id', 'project_id', 'session_tag',
            'description', 'hold_off', 'status', 'result', 'jobs',
            'time_start', 'time_end', 'time_started', 'time_ended',
            'last_start'], _version=_version,
            jobs={'type': 'object', 'additionalProperties': session_job}),
        'EventResult': _object(['result'], {'result': {'enum': [
            'success'] + [f'{event} already requested'
                          for event in core_jobs.EVENTS]}}),
        'JobSchedule': _object(
            ['job_id', 'timezone', 'timezone_source', 'trigger',
             'next_run', 'runs'], {
                'job_id': _string,
                'timezone': {'type': 'string', 'description':
                             'The IANA zone the schedule is read in.'},
                'timezone_source': {'enum': ['job', 'default']},
                'trigger': {
                    'type': 'object', 'required': ['kind'],
                    'description': 'The APScheduler trigger '
                                   'freezer-scheduler makes of the job.',
                    'properties': {
                        'kind': {'enum': ['date', 'interval', 'cron']},
                        'run_date': _string,
                        'seconds': {'type': 'integer', 'minimum': 1},
                        'continuous': {'type': 'boolean'},
                        'fields': {'type': 'object',
                                   'additionalProperties': _string},
                        'start_date': _string,
                        'end_date': _string}},
                'next_run': {'type': ['string', 'null'],
                             'pattern': _UTC_TIME},
                'runs': {'type': 'array', 'maxItems': 100,
                         'items': _object(
                             ['utc', 'local', 'utc_offset', 'dst'], {
                                 'utc': {'type': 'string',
                                         'pattern': _UTC_TIME},
                                 'local': _string,
                                 'utc_offset': {
                                     'type': 'string',
                                     'pattern': r'^[+-]\d{2}:\d{2}$'},
                                 'dst': {
                                     'enum': [None, 'gap', 'overlap'],
                                     'description':
                                         'gap: the local time asked for '
                                         'does not exist (the run happens '
                                         'at the instant given); overlap: '
                                         'the local time happens twice.'}})},
            }),
        'Run': _run_schema(),
        'Coverage': _coverage_schema(),
        'SessionActionResult': _object(['result', 'session_tag'], {
            'result': {'enum': ['success', 'hold-off', 'out-of-sync']},
            'session_tag': {'type': 'integer', 'minimum': 0}}),
    }


def _run_schema():
    """A run record (core/health.py)."""
    time = {'type': 'integer', 'description': 'Seconds since the epoch; '
                                              '-1 when not applicable.'}
    return _object(
        ['run_id', 'job_id', 'client_id', 'status', 'result', 'start',
         'end', 'backups'], {
            'run_id': _string, 'job_id': _string, 'client_id': _string,
            'description': _string, 'session_id': _string,
            'session_tag': {'type': 'integer', 'minimum': 0},
            'status': {'enum': list(core_health.STATUSES)},
            'result': {'enum': [''] + list(core_health.RESULTS)
                       + [core_health.LOST, core_health.MISSED]},
            'reason': {'enum': list(core_health.REASONS),
                       'description': 'Why a missed run did not happen.'},
            'session_result': _string,
            'start': time, 'end': time, 'last_report': time,
            'expected_at': time,
            'at': {'type': 'integer',
                   'description': 'start, or expected_at of a missed run '
                                  '(the order of the list).'},
            'backups': {'type': 'array', 'items': _string},
            'events': {'type': 'array', 'items': _object(
                ['event', 'at'], {'event': _string,
                                  'at': {'type': 'integer'}})},
            'reported_after_lost': {'type': 'boolean'},
            'user_id': _string, 'project_id': _string}, additional=True)


def _coverage_schema():
    """The answer of GET /coverage (core/coverage.py)."""
    age = {'type': ['integer', 'null'], 'minimum': 0,
           'description': 'Seconds.'}
    when = {'type': ['string', 'null'], 'pattern': _UTC_TIME}
    count = {'type': 'integer', 'minimum': 0}
    job = _object(
        ['job_id', 'client_id', 'last_success', 'rpo', 'rpo_source',
         'breached', 'missed_7d', 'stale', 'next_run', 'client_last_seen',
         'client_offline'], {
            'job_id': _string, 'client_id': _string, 'project_id': _string,
            'description': _string, 'status': _string,
            'last_success': {'oneOf': [{'type': 'null'}, _object(
                ['run_id', 'end', 'age'], {
                    'run_id': _string, 'end': when, 'age': age,
                    'backups': {'type': 'array', 'items': _string}})]},
            'rpo': {'type': ['integer', 'null'], 'minimum': 1},
            'rpo_source': {'enum': ['job', 'default', 'none']},
            'breached': {'type': 'boolean'},
            'missed_7d': count, 'lost_7d': count,
            'stale': {'type': 'boolean'},
            'run_lease': {'type': 'integer', 'minimum': 1},
            'next_run': when, 'client_last_seen': when,
            'client_offline': {'type': 'boolean'}})
    client = _object(
        ['client_id', 'last_seen', 'offline', 'jobs', 'breached'], {
            'client_id': _string, 'project_id': _string, 'last_seen': when,
            'last_seen_age': age, 'offline': {'type': 'boolean'},
            'jobs': count, 'breached': count, 'stale': count,
            'missed_7d': count})
    return _object(['generated_at', 'summary', 'clients', 'jobs'], {
        'generated_at': when,
        'summary': _object(
            ['jobs', 'breached', 'stale', 'missed_7d', 'clients_offline'],
            {name: count for name in ('jobs', 'breached', 'stale',
                                      'missed_7d', 'clients_offline')}),
        'clients': {'type': 'array', 'items': client},
        'jobs': {'type': 'array', 'items': job}})


def _coverage_path(version, prefix):
    v2 = '{project_id}' in prefix
    common = {400, 401, 403, 406, 503}
    return {f'{prefix}/coverage': {
        'parameters': [_param('project_id')] if v2 else [],
        'get': _operation(
            f'{version}ShowCoverage', 'health',
            summary='Backup coverage per client and per job: the last '
                    'good run against the RPO, missed and stale runs, '
                    'next run, client last seen',
            responses={'200': _json(_ref('Coverage'),
                                    'The coverage of the scope.')},
            errors=common | {413}, policy=health.Coverage.policies['GET'],
            params=['breached', 'client_id_filter', 'job_id_filter',
                    'coverage_all_projects', 'limit', 'offset'],
            body=_body('Search', 'An optional search document choosing '
                       'the jobs, as for GET .../jobs. limit and offset '
                       'page the jobs listed (every job by default); the '
                       'summary and the clients count them all.',
                       required=False))}}


_ERRORS = {
    400: ('BadRequest', 'Malformed JSON, a body or query value that breaks '
                        'a rule, or a malformed v2 project id.'),
    401: ('Unauthorized', 'No valid token.'),
    403: ('Forbidden', 'The policy denies the call, or the v2 URL names '
                       'another project than the token (admins excepted).'),
    404: ('NotFound', 'No such document in the caller\'s scope.'),
    405: ('MethodNotAllowed', 'Unknown session action (not start or end).'),
    406: ('NotAcceptable', 'The Accept header does not allow JSON.'),
    409: ('Conflict', 'The id is taken, or the document kept changing '
                      'under concurrent writes.'),
    412: ('PreconditionFailed',
          'If-Match names another version than the stored one.'),
    413: ('ContentTooLarge',
          'The body is larger than [api] max_request_body_size.'),
    422: ('UnprocessableEntity', 'The job\'s client is not registered in '
                                 'the project, or cannot run one of the '
                                 'job actions.'),
    503: ('ServiceUnavailable', 'The store is unreachable.'),
}

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    # NOTE: keystonemiddleware adds it in a Keystone deployment.
    401: {'WWW-Authenticate': {'schema': _string}},
    405: {'Allow': {'required': True, 'schema': _string}},
    503: {'Retry-After': {'schema': _string}},
}


def _responses():
    """``components.responses``: one error answer per status."""
    answers = {}
    for status, (name, description) in _ERRORS.items():
        answer = {'description': description, 'content': {
            JSON: {'schema': _ref('Error')}}}
        if status in _ERROR_HEADERS:
            answer['headers'] = copy.deepcopy(_ERROR_HEADERS[status])
        answers[name] = answer
    return answers


def _parameters():
    id_names = ('backup_id', 'client_id', 'job_id', 'action_id',
                'session_id')
    params = {
        'project_id': {
            'name': 'project_id', 'in': 'path', 'required': True,
            'description': 'The project of the documents; must be the '
                           'token\'s project unless the caller is an '
                           'admin.',
            'schema': {'type': 'string',
                       'pattern': middleware.PROJECT_PATTERN.pattern}},
        'limit': {
            'name': 'limit', 'in': 'query', 'required': False,
            'description': 'Page size.',
            'schema': {'type': 'integer', 'minimum': 1,
                       'maximum': core_base.MAX_LIMIT,
                       'default': core_base.DEFAULT_LIMIT}},
        'offset': {
            'name': 'offset', 'in': 'query', 'required': False,
            'description': 'Documents to skip, in creation order.',
            'schema': {'type': 'integer', 'minimum': 0, 'default': 0}},
        'all_projects': {
            'name': 'all_projects', 'in': 'query', 'required': False,
            'description': 'List the jobs of every project; honoured only '
                           'when the policy jobs:get_all_projects allows '
                           'it, else 403. Also accepts 1/0, yes/no, on/off.',
            'schema': {'type': 'boolean', 'default': False}},
        'count': {
            'name': 'count', 'in': 'query', 'required': False,
            'description': 'How many run times to list.',
            'schema': {'type': 'integer', 'minimum': 1,
                       'maximum': core_schedule.MAX_COUNT,
                       'default': core_schedule.DEFAULT_COUNT}},
        'breached': {
            'name': 'breached', 'in': 'query', 'required': False,
            'description': 'Only jobs (and clients) whose RPO is breached.',
            'schema': {'type': 'boolean', 'default': False}},
        'client_id_filter': {
            'name': 'client_id', 'in': 'query', 'required': False,
            'description': 'Only this client and its jobs.',
            'schema': {'type': 'string', 'minLength': 1, 'maxLength': 255}},
        'job_id_filter': {
            'name': 'job_id', 'in': 'query', 'required': False,
            'description': 'Only this job.',
            'schema': {'type': 'string', 'minLength': 1, 'maxLength': 255}},
        'coverage_all_projects': {
            'name': 'all_projects', 'in': 'query', 'required': False,
            'description': 'The coverage of every project; honoured only '
                           'when the policy coverage:get_all_projects '
                           'allows it, else 403.',
            'schema': {'type': 'boolean', 'default': False}},
        'If-Match': {
            'name': 'If-Match', 'in': 'header', 'required': False,
            'description': 'Write only if the stored version is this one '
                           '(a number, optionally quoted as in the ETag), '
                           'else 412.',
            'schema': {'type': 'string',
                       'pattern': r'^\s*(?:\*|(?:W/)?"*[0-9]+"*)\s*$'}},
    }
    for name in id_names:
        # NOTE: a create-or-replace checks the id it is given.
        params[f'new_{name}'] = {
            'name': name, 'in': 'path', 'required': True,
            'description': 'The id to create or replace.',
            'schema': {'type': 'string', 'pattern': core.ID_PATTERN,
                       'maxLength': 255}}
        params[name] = {'name': name, 'in': 'path', 'required': True,
                        'schema': {'type': 'string', 'minLength': 1}}
    return params


def _param(name):
    return {'$ref': _PARAMETERS + name}


_ETAG = {'ETag': {'required': True, 'description': 'The version, quoted.',
                  'schema': {'type': 'string', 'pattern': r'^"\d+"$'}}}


def _json(schema, description, headers=None):
    answer = {'description': description,
              'content': {JSON: {'schema': schema}}}
    if headers:
        answer['headers'] = copy.deepcopy(headers)
    return answer


def _body(name, description, required=True):
    return {'required': required, 'description': description,
            'content': {JSON: {'schema': _ref(name)}}}


def _operation(op_id, tag, summary, responses, errors, policy=None,
               body=None, params=(), public=False, head=False):
    op = {'operationId': op_id, 'tags': [tag], 'summary': summary}
    if params:
        op['parameters'] = [_param(name) for name in params]
    if body is not None:
        op['requestBody'] = body
    answers = dict(responses)
    for status in sorted(errors):
        name, description = _ERRORS[status]
        if head:
            # NOTE: answers to HEAD carry the headers but never a body.
            answers[str(status)] = {'description': description}
        else:
            answers[str(status)] = {'$ref': _RESPONSES + name}
    op['responses'] = answers
    if public:
        op['security'] = []
    if policy:
        op['x-policy-rule'] = policy
    return op


def _public_paths(v1, v2):
    versions_answer = _json(_ref('Versions'), 'The enabled API versions, '
                                              'v2 first.')
    health_ok = {'description': 'The store answers.', 'content': {
        TEXT: {'schema': {'const': 'OK'}}}}
    health_down = {
        'description': 'The store is unreachable (JSON error), or the '
                       'service was taken out of rotation with the file '
                       f'{versions.HEALTHCHECK_DISABLE_FILE} (text).',
        'content': {
            TEXT: {'schema': {'const': 'DISABLED BY FILE'}},
            JSON: {'schema': _ref('Error')}}}
    paths = {
        '/': {
            'get': _operation(
                'listVersions', 'versions', 'List the API versions',
                {'300': versions_answer}, [406], public=True),
            'head': _operation(
                'headVersions', 'versions', 'List the API versions '
                '(headers only)', {'300': {'description': 'As GET.'}},
                [406], public=True, head=True),
        },
        '/healthcheck': {
            'get': _operation(
                'healthcheck', 'versions', 'Check the service and its store',
                {'200': health_ok, '503': health_down}, [406],
                public=True),
            'head': _operation(
                'headHealthcheck', 'versions', 'Check the service '
                '(headers only)', {'200': {'description': 'As GET.'},
                                   '503': {'description': 'As GET.'}},
                [406], public=True, head=True),
        },
        PATH: {
            'get': _operation(
                'getOpenAPI', 'versions', 'This document',
                {'200': _json({'type': 'object',
                               'required': ['openapi', 'info', 'paths']},
                              'The OpenAPI document of the enabled '
                              'versions.')},
                [406], public=True),
        },
    }
    home = {'description': 'The JSON home document of the version.',
            'content': {versions.JSON_HOME: {
                'schema': _ref('HomeDocument')}}}
    for enabled, version in ((v1, 'v1'), (v2, 'v2')):
        if enabled:
            paths[f'/{version}'] = {'get': _operation(
                f'{version}Home', 'versions',
                f'The JSON home document of {version}', {'200': home},
                [401, 403, 406])}
    return paths


# noun -> (id field, singular, collection class, item class, schemas)
NOUNS = {
    'backups': ('backup_id', 'backup', backups.BackupCollection,
                backups.BackupItem,
                {'create': 'BackupMetadataInput', 'patch': 'BackupPatch',
                 'doc': 'Backup', 'doc_v1': 'BackupV1',
                 'search': 'BackupSearch'}),
    'clients': ('client_id', 'client', clients.ClientCollection,
                clients.ClientItem,
                {'create': 'ClientInfo', 'patch': 'ClientPatch',
                 'doc': 'Client', 'search': 'Search'}),
    'jobs': ('job_id', 'job', jobs.JobCollection, jobs.JobItem,
             {'create': 'JobCreate', 'replace': 'JobCreate',
              'patch': 'JobPatch', 'doc': 'Job', 'search': 'Search'}),
    'actions': ('action_id', 'action', actions.ActionCollection,
                actions.ActionItem,
                {'create': 'ActionCreate', 'replace': 'ActionReplace',
                 'patch': 'ActionPatch', 'doc': 'Action',
                 'search': 'Search'}),
    'sessions': ('session_id', 'session', sessions.SessionCollection,
                 sessions.SessionItem,
                 {'create': 'SessionCreate', 'replace': 'SessionCreate',
                  'patch': 'SessionPatch', 'doc': 'Session',
                  'search': 'Search'}),
}

_WRITE_RESULT = 'an id and the new version'


def _write_result(id_field):
    return _object([id_field, 'version'], {
        id_field: _string, 'version': {'type': 'integer', 'minimum': 1}})


def _noun_paths(version, prefix, noun):
    id_field, singular, collection, item, names = NOUNS[noun]
    title = singular.capitalize()
    v2 = '{project_id}' in prefix
    # every authenticated route: no token, policy, Accept, store down
    common = {401, 403, 406, 503} | ({400} if v2 else set())
    writes = common | {409}
    unprocessable = {422} if noun == 'jobs' else set()
    path_params = [_param('project_id')] if v2 else []
    stored = _ref(names.get(f'doc_{version}', names['doc']))
    single = {'allOf': [stored, {'required': ['_version']}]}
    listed = {'allOf': [stored, {'not': {'required': ['_version']}}]}
    create_body = (_wrapped_or_bare(names['create']) if noun == 'clients'
                   else _ref(names['create']))
    patch_body = (_wrapped_or_bare(names['patch']) if noun == 'clients'
                  else _ref(names['patch']))
    op = functools.partial(_operation, tag=noun)
    list_params = ['limit', 'offset'] + (
        ['all_projects'] if noun == 'jobs' else [])

    collection_item = {
        'parameters': path_params,
        'get': op(
            f'{version}List{title}s', summary=f'List {noun}',
            responses={'200': _json(
                _object([noun], {noun: {'type': 'array', 'items': listed}}),
                f'The {noun} in creation order.')},
            errors=common | {400, 413}, params=list_params,
            policy=collection.policies['GET'],
            body=_body(names['search'], 'An optional search document. It '
                       'is sent as the body of the GET, as '
                       'python-freezerclient and freezer-scheduler do.',
                       required=False)),
        'post': op(
            f'{version}Create{title}', summary=f'Create a {singular}',
            responses={'201': _json(
                _object([id_field], {id_field: _string}),
                f'The id of the new {singular}.')},
            errors=writes | {400, 413} | unprocessable,
            policy=collection.policies['POST'],
            body={'required': True, 'content': {
                JSON: {'schema': create_body}}}),
    }
    item_path = {
        'parameters': path_params + [_param(id_field)],
        'get': op(
            f'{version}Show{title}', summary=f'Show a {singular}',
            responses={'200': _json(single, f'The {singular} with its '
                                            'version.', _ETAG)},
            errors=common | {404}, policy=item.policies['GET']),
        'patch': op(
            f'{version}Update{title}',
            summary=f'Update part of a {singular} (deep merge)',
            responses={'200': _json(_write_result(id_field),
                                    _WRITE_RESULT, _ETAG)},
            errors=writes | {400, 404, 412, 413} | unprocessable,
            policy=item.policies['PATCH'], params=['If-Match'],
            body={'required': False,
                  'description': 'What to change; no body is {}.',
                  'content': {JSON: {'schema': patch_body}}}),
        'delete': op(
            f'{version}Delete{title}', summary=f'Delete a {singular}',
            responses={'204': {'description': 'Deleted.'}},
            errors=writes | {404}, policy=item.policies['DELETE']),
    }
    if 'replace' in names:
        item_path['post'] = op(
            f'{version}Replace{title}',
            summary=f'Create or replace a {singular} with this id',
            responses={'201': _json(_write_result(id_field),
                                    _WRITE_RESULT, _ETAG)},
            errors=writes | {400, 412, 413} | unprocessable,
            policy=item.policies['POST'],
            params=['If-Match', f'new_{id_field}'],
            body=_body(names['replace'], f'The whole {singular}.'))
    base = f'{prefix}/{noun}'
    paths = {base: collection_item, f'{base}/{{{id_field}}}': item_path}

    if noun == 'jobs':
        paths[f'{base}/{{job_id}}/event'] = {
            'parameters': path_params + [_param('job_id')],
            'post': op(
                f'{version}SendJobEvent',
                summary='Request start, stop or abort of a job',
                responses={'202': _json(_ref('EventResult'),
                                        'What was done.')},
                errors=writes | {400, 404, 413},
                policy=jobs.JobEvent.policies['POST'],
                body=_body('JobEvent', 'The event.'))}
        paths[f'{base}/{{job_id}}/schedule'] = {
            'parameters': path_params + [_param('job_id')],
            'get': op(
                f'{version}ShowJobSchedule',
                summary='The next run times of a job, as freezer-scheduler '
                        'computes them, in UTC and in the job\'s time zone',
                responses={'200': _json(_ref('JobSchedule'),
                                        'The trigger and the next runs.')},
                errors=common | {400, 404, 422}, params=['count'],
                policy=jobs.JobSchedule.policies['GET'])}
        paths[f'{base}/{{job_id}}/runs'] = {
            'parameters': path_params + [_param('job_id')],
            'get': op(
                f'{version}ListJobRuns',
                summary='The runs of a job, newest first: reported, lost '
                        'and missed runs (the run ledger)',
                responses={'200': _json(
                    _object(['runs'], {'runs': {
                        'type': 'array', 'items': _ref('Run')}}),
                    'The runs, newest first.')},
                errors=common | {400, 404, 413},
                params=['limit', 'offset'],
                policy=health.JobRuns.policies['GET'],
                body=_body('Search', 'An optional search document over '
                           'the run records, as for every list.',
                           required=False))}
    if noun == 'sessions':
        paths[f'{base}/{{session_id}}/action'] = {
            'parameters': path_params + [_param('session_id')],
            'post': op(
                f'{version}SessionAction',
                summary='Start or end a session run for one member job',
                responses={'202': _json(_ref('SessionActionResult'),
                                        'The outcome and the session tag '
                                        'after the call.')},
                errors=writes | {400, 404, 405, 413},
                policy=sessions.SessionAction.policies['POST'],
                body=_body('SessionAction', 'start or end.'))}
        member = {'204': {'description': 'Done.'}}
        paths[f'{base}/{{session_id}}/jobs/{{job_id}}'] = {
            'parameters': path_params + [_param('session_id'),
                                         _param('job_id')],
            'put': op(
                f'{version}AddSessionJob',
                summary='Add a job to the session (it takes the session '
                        'schedule)', responses=member,
                errors=writes | {404},
                policy=sessions.SessionJob.policies['PUT']),
            'delete': op(
                f'{version}RemoveSessionJob',
                summary='Remove a job from the session (it is asked to '
                        'stop)', responses=member,
                errors=writes | {404},
                policy=sessions.SessionJob.policies['DELETE']),
        }
    return paths


DESCRIPTION = """\
The control plane of OpenStack Freezer: clients (scheduler nodes), jobs,
actions, sessions and backup metadata.

v1 (`/v1/...`) is user-scoped: a caller reaches the documents it owns in
its token's project. v2 (`/v2/{project_id}/...`) is project-scoped: the URL
project must be the token's (admins excepted). Both serve the same
documents. Trailing slashes are ignored. Lists take `limit` and `offset`
and an optional search document as the body of the GET. Every error is
JSON `{"title", "description"}`. Single documents carry `_version` and an
`ETag`; writes may send `If-Match: <version>`. `Content-Type` is not
enforced; `Accept` must allow JSON (else 406). Beyond the schemas, a body
is refused (400) when a string holds a NUL character or a lone surrogate,
or when it nests deeper than 64 levels.

See doc/api-reference.rst for examples.
"""


def _metrics_paths(path):
    return {path: {'get': {
        **_operation(
            'getMetrics', 'metrics', 'Prometheus metrics (when [metrics] '
            'enabled)',
            {'200': {'description': 'The Prometheus text format.',
                     'content': {TEXT: {'schema': {'type': 'string'}}}}},
            [401, 403, 406], policy='metrics:get'),
        'description': 'Served at [metrics] path when [metrics] enabled. '
                       'Callers from [metrics] allowed_addresses need no '
                       'token; others need one that metrics:get allows.',
        # NOTE: a token is optional (the address may be enough)
        'security': [{}, {SECURITY_SCHEME: []}]}}}


def _audit_paths():
    """``GET /v2/{project_id}/audit`` (read only: 405 for the rest)."""
    nullable_string = {'type': ['string', 'null']}
    record = _object(list(core_audit.FIELDS) + ['time'], {
        'id': {'type': 'string'}, 'project_id': {'type': 'string'},
        'seq': {'type': 'integer', 'minimum': 1},
        'at': {'type': 'integer', 'description': 'Microseconds since the '
                                                 'epoch.'},
        'time': {'type': 'string', 'description': 'at, in ISO 8601 UTC.'},
        'user_id': {'type': 'string'}, 'user_project_id': nullable_string,
        'roles': {'type': 'array', 'items': {'type': 'string'}},
        'method': {'type': 'string'}, 'route': {'type': 'string'},
        'request_id': nullable_string, 'kind': {'type': 'string'},
        'doc_id': {'type': 'string'},
        'action': {'enum': sorted(core_audit.ACTIONS.values())},
        'fields': {'type': 'array', 'items': {'type': 'string'},
                   'description': 'Names of the fields that changed '
                                  '(never their values).'},
        'fields_truncated': {'type': 'boolean'},
        'version': {'type': ['integer', 'null']},
        'result': {'const': core_audit.RESULT_SUCCESS},
        'prev_hash': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'},
        'hash': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'},
    })
    time_param = {'in': 'query', 'required': False, 'schema': {
        'type': 'string', 'description': 'Seconds since the epoch or an '
                                         'ISO 8601 time (UTC by default).'}}
    params = [
        {'name': 'since', 'description': 'Records at this time or later.',
         **time_param},
        {'name': 'until', 'description': 'Records before this time.',
         **time_param},
        {'name': 'all_projects', 'in': 'query', 'required': False,
         'description': 'Every project\'s records, by time (policy '
                        'audit:get_all_projects, else 403).',
         'schema': {'type': 'boolean', 'default': False}},
    ]
    get = _operation(
        'v2ListAudit', 'audit',
        'The audit trail of the project: one record per document written '
        'through the API, oldest first, hash-chained',
        {'200': _json(_object(['audit'], {'audit': {
            'type': 'array', 'items': record}}), 'The records.')},
        {400, 401, 403, 406, 503}, policy=AuditTrail.policies['GET'],
        params=('limit', 'offset'))
    get['parameters'] += params
    return {f'{V2_PREFIX}/audit': {'parameters': [_param('project_id')],
                                   'get': get}}


@functools.cache
def _build(v1, v2, metrics_path=None):
    paths = _public_paths(v1, v2)
    if metrics_path:
        paths.update(_metrics_paths(metrics_path))
    for enabled, version, prefix in ((v1, 'v1', V1_PREFIX),
                                     (v2, 'v2', V2_PREFIX)):
        if enabled:
            for noun in NOUNS:
                paths.update(_noun_paths(version, prefix, noun))
            paths.update(_coverage_path(version, prefix))
    tags = [{'name': 'versions', 'description': 'Versions, health, this '
                                                'document.'}]
    tags += [{'name': noun} for noun in NOUNS]
    tags += [{'name': 'health', 'description': 'Backup health: coverage '
                                               'and run ledgers.'}]
    if metrics_path:
        tags.append({'name': 'metrics'})
    if v2:
        paths.update(_audit_paths())
    tags = [{'name': 'versions', 'description': 'Versions, health, this '
                                                'document.'}]
    tags += [{'name': noun} for noun in NOUNS]
    if v2:
        tags.append({'name': 'audit'})
    doc = {
        'openapi': OPENAPI_VERSION,
        'info': {'title': 'Freezer API', 'version': '2',
                 'description': DESCRIPTION,
                 'license': {'name': 'Apache-2.0',
                             'identifier': 'Apache-2.0'}},
        'tags': tags,
        'security': [{SECURITY_SCHEME: []}],
        'paths': paths,
        'components': {
            'securitySchemes': {SECURITY_SCHEME: {
                'type': 'apiKey', 'in': 'header', 'name': 'X-Auth-Token',
                'description': 'A Keystone token. In noauth deployments '
                               'the caller comes from X-User-Id, '
                               'X-Project-Id and X-Roles, or from a token '
                               'of the form user_id:project_id.'}},
            'schemas': _schemas(),
            'responses': _responses(),
            'parameters': _parameters(),
        },
    }
    return json.dumps(doc, sort_keys=False)


def document(v1=True, v2=True, metrics_path=None) -> dict:
    """The OpenAPI document of the enabled API versions (a fresh copy),
    with the metrics route when ``metrics_path`` is given."""
    return json.loads(_build(bool(v1), bool(v2), metrics_path or None))


class OpenAPIDocument(Resource):
    """``GET /openapi.json``: this API described in OpenAPI 3.1."""

    public = True

    def on_get(self, req, resp):
        doc = document(self.conf.api.enable_v1_api,
                       self.conf.api.enable_v2_api,
                       self.conf.metrics.enabled and self.conf.metrics.path)
        # NOTE: like the versions document, the server URL follows each
        # request, so the document is right behind a proxy prefix too.
        doc['servers'] = [{'url': req.prefix}]
        resp.media = doc


def main():
    """Print the document of both versions, and of the metrics at their
    default path, as JSON."""
    json.dump(document(metrics_path='/metrics'), sys.stdout, indent=2)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
