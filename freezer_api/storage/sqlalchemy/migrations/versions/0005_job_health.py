"""One more kind for backup health (issue 15): ``job_health``, one
summary per job (its last good run, its running run, its recent runs and
when it must be settled again), so that coverage reads one document per
job instead of settling every job.

Laid out as the kinds of 0003.

Revision ID: 0005
Revises: 0004
"""

import importlib

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

KIND = 'job_health'

# NOTE: 0003's layout, frozen there.
_LAYOUT = importlib.import_module(
    'freezer_api.storage.sqlalchemy.migrations.versions.0003_runs')


def upgrade():
    _LAYOUT.create_kind(KIND)


def downgrade():
    _LAYOUT.drop_kind(KIND)
