"""[api] options: which API versions are served and request limits."""

from oslo_config import cfg

GROUP_NAME = 'api'

ALL_OPTS = [
    cfg.BoolOpt(
        'enable_v1_api', default=True,
        deprecated_group='DEFAULT',
        help='Serve the user-scoped v1 API (/v1). Old Pike-era schedulers '
             'need it.'),
    cfg.BoolOpt(
        'enable_v2_api', default=True,
        deprecated_group='DEFAULT',
        help='Serve the project-scoped v2 API (/v2/{project_id}), the '
             'default of current python-freezerclient.'),
    cfg.IntOpt(
        'max_request_body_size', default=1024 * 1024, min=1024,
        help='Largest request body accepted, in bytes; larger bodies are '
             'answered with 413. Raise it only if agents post unusually '
             'large backup metadata.'),
]


def register_opts(conf):
    conf.register_opts(ALL_OPTS, group=GROUP_NAME)


def list_opts():
    return {GROUP_NAME: ALL_OPTS}
