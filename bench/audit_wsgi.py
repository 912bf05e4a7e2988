"""The uwsgi entry of ``bench.audit_http``: the service exactly as
``freezer_api.cmd.wsgi`` builds it (its configuration file, its paste
pipeline), with the features that ``FREEZER_BENCH_SIDE`` leaves out taken
out as ``bench.audit_cost`` does in process. Benchmarks only: nothing in
``freezer_api`` can turn the audit trail off."""

import os

from bench import audit_cost

SIDE = os.environ['FREEZER_BENCH_SIDE']

with audit_cost._features(*audit_cost.SIDES[SIDE]):
    from freezer_api.cmd import wsgi

application = wsgi.application
