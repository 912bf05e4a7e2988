"""Two index b-trees less to update per index row.

* ``ix_<kind>_terms_path`` (path, value, doc_pk) goes: searches by path
  use ``ix_<kind>_terms_key``, since a path always ends with its leaf's
  key.
* ``ix_<kind>_terms_num`` keeps only numeric rows (``num IS NOT NULL``)
  on SQLite and PostgreSQL; MySQL has no partial indexes and keeps it
  whole.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# NOTE: frozen copy of the kinds as of this revision.
KINDS = ('backups', 'clients', 'jobs', 'actions', 'sessions')
NUMERIC = sa.text('num IS NOT NULL')


def _partial():
    return op.get_bind().dialect.name in ('sqlite', 'postgresql')


def upgrade():
    partial = _partial()
    for kind in KINDS:
        terms = f'{kind}_terms'
        op.drop_index(f'ix_{kind}_terms_path', table_name=terms)
        if partial:
            op.drop_index(f'ix_{kind}_terms_num', table_name=terms)
            op.create_index(f'ix_{kind}_terms_num', terms, ['path', 'num'],
                            sqlite_where=NUMERIC, postgresql_where=NUMERIC)


def downgrade():
    partial = _partial()
    for kind in reversed(KINDS):
        terms = f'{kind}_terms'
        if partial:
            op.drop_index(f'ix_{kind}_terms_num', table_name=terms)
            op.create_index(f'ix_{kind}_terms_num', terms, ['path', 'num'])
        op.create_index(f'ix_{kind}_terms_path', terms,
                        ['path', 'value', 'doc_pk'])
