"""Two new kinds for backup health (issue 15): ``runs``, the run ledger
(one document per run a scheduler reported, or per missed run), and
``presence``, when each client last polled.

Each gets its table and its search index, laid out as the kinds of 0001
after 0002 (no ``ix_<kind>_terms_path``; the numeric index partial where
the engine has partial indexes).

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# NOTE: frozen copies of the names and sizes in models.py as of this
# revision; later revisions must not change them here.
KINDS = ('runs', 'presence')
ID_LENGTH = 255
OWNER_LENGTH = 128
INDEX_LENGTH = 200
NUMERIC = sa.text('num IS NOT NULL')

TABLE_ARGS: dict = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
                    'mariadb_engine': 'InnoDB', 'mariadb_charset': 'utf8mb4'}


def _exact(length):
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset='utf8mb4', collation='utf8mb4_bin'),
        'mysql', 'mariadb')


def _text(exact=False):
    variant = (mysql.LONGTEXT(charset='utf8mb4', collation='utf8mb4_bin')
               if exact else mysql.LONGTEXT())
    return sa.Text().with_variant(variant, 'mysql', 'mariadb')


def _key():
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    for kind in KINDS:
        create_kind(kind)


def create_kind(kind):
    """The table and search index of one kind (0005 makes one more)."""
    partial = op.get_bind().dialect.name in ('sqlite', 'postgresql')
    op.create_table(
        kind,
        sa.Column('pk', _key(), primary_key=True, autoincrement=True),
        sa.Column('id', _exact(ID_LENGTH), nullable=False),
        sa.Column('project_id', _exact(OWNER_LENGTH), nullable=False),
        sa.Column('user_id', _exact(OWNER_LENGTH), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('doc', _text(), nullable=False),
        **TABLE_ARGS,
    )
    op.create_index(f'uq_{kind}_id', kind, ['id'], unique=True)
    op.create_index(f'ix_{kind}_project_user_order', kind,
                    ['project_id', 'user_id', 'created_at', 'id'])
    op.create_index(f'ix_{kind}_project_order', kind,
                    ['project_id', 'created_at', 'id'])

    terms = f'{kind}_terms'
    op.create_table(
        terms,
        sa.Column('pk', _key(), primary_key=True, autoincrement=True),
        sa.Column('doc_pk', _key(), nullable=False),
        sa.Column('path', _exact(INDEX_LENGTH), nullable=False),
        sa.Column('key', _exact(INDEX_LENGTH), nullable=False),
        sa.Column('value', _exact(INDEX_LENGTH), nullable=False),
        sa.Column('num', sa.Double(), nullable=True),
        sa.Column('text', _text(exact=True), nullable=True),
        sa.ForeignKeyConstraint(['doc_pk'], [f'{kind}.pk'],
                                name=f'fk_{kind}_terms_doc',
                                ondelete='CASCADE'),
        **TABLE_ARGS,
    )
    op.create_index(f'ix_{kind}_terms_key', terms,
                    ['key', 'value', 'doc_pk'])
    if partial:
        op.create_index(f'ix_{kind}_terms_num', terms, ['path', 'num'],
                        sqlite_where=NUMERIC, postgresql_where=NUMERIC)
    else:
        op.create_index(f'ix_{kind}_terms_num', terms, ['path', 'num'])
    op.create_index(f'ix_{kind}_terms_doc', terms, ['doc_pk'])


def downgrade():
    for kind in reversed(KINDS):
        drop_kind(kind)


def drop_kind(kind):
    op.drop_table(f'{kind}_terms')
    op.drop_table(kind)
