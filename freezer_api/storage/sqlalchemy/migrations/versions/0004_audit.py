"""The audit trail: append-only records and one chain head per project.

No search-term rows: records are read only by project, seq and time (see
``freezer_api.storage.sqlalchemy.audit``).

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# NOTE: frozen copies of the sizes in models.py as of this revision.
OWNER_LENGTH = 128
TABLE_ARGS: dict = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
                    'mariadb_engine': 'InnoDB', 'mariadb_charset': 'utf8mb4'}


def _exact(length):
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset='utf8mb4', collation='utf8mb4_bin'),
        'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'audit_records',
        sa.Column('project_id', _exact(OWNER_LENGTH), primary_key=True),
        sa.Column('seq', sa.BigInteger(), primary_key=True,
                  autoincrement=False),
        sa.Column('at', sa.BigInteger(), nullable=False),
        sa.Column('record',
                  sa.Text().with_variant(mysql.LONGTEXT(), 'mysql',
                                         'mariadb'),
                  nullable=False),
        **TABLE_ARGS,
    )
    op.create_index('ix_audit_records_at', 'audit_records', ['at'])
    op.create_table(
        'audit_heads',
        sa.Column('project_id', _exact(OWNER_LENGTH), primary_key=True),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(64), nullable=False),
        **TABLE_ARGS,
    )
    # events claimed once (notifications: freezer_api.notifications)
    op.create_table(
        'audit_events',
        sa.Column('event_id', _exact(128), primary_key=True),
        sa.Column('at', sa.BigInteger(), nullable=False),
        **TABLE_ARGS,
    )


def downgrade():
    op.drop_table('audit_events')
    op.drop_table('audit_heads')
    op.drop_index('ix_audit_records_at', table_name='audit_records')
    op.drop_table('audit_records')
