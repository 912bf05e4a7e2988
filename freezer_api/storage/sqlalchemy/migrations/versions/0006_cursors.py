"""Cursors: named positions with a lease (the notifications' send
cursor, see ``freezer_api.storage.sqlalchemy.cursors``).

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# NOTE: frozen copies of the sizes in models.py as of this revision.
OWNER_LENGTH = 128
NAME_LENGTH = 64
TABLE_ARGS: dict = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
                    'mariadb_engine': 'InnoDB', 'mariadb_charset': 'utf8mb4'}


def _exact(length):
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset='utf8mb4', collation='utf8mb4_bin'),
        'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'cursors',
        sa.Column('name', _exact(NAME_LENGTH), primary_key=True),
        sa.Column('cursor_key', _exact(OWNER_LENGTH), primary_key=True),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.Column('holder', _exact(OWNER_LENGTH), nullable=False),
        sa.Column('lease_until', sa.BigInteger(), nullable=False),
        **TABLE_ARGS,
    )


def downgrade():
    op.drop_table('cursors')
