"""Tables of the SQLAlchemy storage driver.

Each kind of document lives in its own table, the document kept as JSON text
next to the columns the driver filters and orders on. A companion table
``<kind>_terms`` is the inverted index the search runs on: one row per
distinct scalar leaf of the document (see ``storage.query.leaves``).

This module describes the schema as of the newest migration; the migrations
in ``migrations/versions`` create it and must be kept in step with it.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from freezer_api.storage import base
# NOTE: ``terms`` here is the term tables
from freezer_api.storage import terms as term_rules

__all__ = ['metadata', 'documents', 'terms', 'ID_LENGTH', 'OWNER_LENGTH',
           'INDEX_LENGTH', 'index_form', 'value_form', 'term_rows']

# Column sizes. Keystone ids are 32-64 characters; ids chosen by the core
# (uuids, client ids) fit in 255. Together they stay inside MySQL's
# 3072-byte index limit with utf8mb4.
ID_LENGTH = 255
OWNER_LENGTH = 128
# Longest key, path or value text stored as is in the index; longer ones are
# replaced by a digest of fixed size so that equality stays exact.
INDEX_LENGTH = term_rules.SQL_LENGTH

TABLE_ARGS: dict = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
                    'mariadb_engine': 'InnoDB', 'mariadb_charset': 'utf8mb4'}


def exact_string(length):
    """A VARCHAR compared byte for byte on every engine.

    NOTE: MySQL's default collations ignore case and accents, which would
    make ids and indexed values compare loosely; force a binary collation.
    """
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset='utf8mb4', collation='utf8mb4_bin'),
        'mysql', 'mariadb')


def long_text(exact=False):
    """Unbounded text (MySQL's TEXT stops at 64 KiB).

    ``exact`` compares it byte for byte on MySQL too (see ``exact_string``).
    """
    variant = (mysql.LONGTEXT(charset='utf8mb4', collation='utf8mb4_bin')
               if exact else mysql.LONGTEXT())
    return sa.Text().with_variant(variant, 'mysql', 'mariadb')


def surrogate_key():
    # NOTE: SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid).
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


metadata = sa.MetaData()

documents: dict[str, sa.Table] = {}
terms: dict[str, sa.Table] = {}


def _define(kind):
    unique_cols = (('project_id', 'id') if kind in base.PROJECT_UNIQUE_KINDS
                   else ('id',))
    docs = sa.Table(
        kind, metadata,
        sa.Column('pk', surrogate_key(), primary_key=True,
                  autoincrement=True),
        sa.Column('id', exact_string(ID_LENGTH), nullable=False),
        sa.Column('project_id', exact_string(OWNER_LENGTH), nullable=False),
        sa.Column('user_id', exact_string(OWNER_LENGTH), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('doc', long_text(), nullable=False),
        sa.Index(f'uq_{kind}_id', *unique_cols, unique=True),
        sa.Index(f'ix_{kind}_project_user_order',
                 'project_id', 'user_id', 'created_at', 'id'),
        sa.Index(f'ix_{kind}_project_order', 'project_id', 'created_at', 'id'),
        **TABLE_ARGS,
    )
    idx = sa.Table(
        f'{kind}_terms', metadata,
        sa.Column('pk', surrogate_key(), primary_key=True,
                  autoincrement=True),
        sa.Column('doc_pk', surrogate_key(),
                  sa.ForeignKey(f'{kind}.pk', ondelete='CASCADE',
                                name=f'fk_{kind}_terms_doc'),
                  nullable=False),
        sa.Column('path', exact_string(INDEX_LENGTH), nullable=False),
        sa.Column('key', exact_string(INDEX_LENGTH), nullable=False),
        sa.Column('value', exact_string(INDEX_LENGTH), nullable=False),
        sa.Column('num', sa.Double(), nullable=True),
        sa.Column('text', long_text(exact=True), nullable=True),
        # NOTE: no index on (path, value): a path ends with its leaf's
        # key, so the driver finds paths through this one (see
        # SQLAlchemyDriver._build_list). Each index costs every write.
        sa.Index(f'ix_{kind}_terms_key', 'key', 'value', 'doc_pk'),
        # Only numbers are searched by range: the other rows stay out
        # where the engine has partial indexes.
        sa.Index(f'ix_{kind}_terms_num', 'path', 'num',
                 sqlite_where=sa.text('num IS NOT NULL'),
                 postgresql_where=sa.text('num IS NOT NULL')),
        sa.Index(f'ix_{kind}_terms_doc', 'doc_pk'),
        **TABLE_ARGS,
    )
    documents[kind] = docs
    terms[kind] = idx


for _kind in base.KINDS:
    _define(_kind)


# The index forms: one set of rules for both engines (storage.terms).
index_form = term_rules.sql_name
text_form = term_rules.sql_text
value_form = term_rules.sql_value
term_rows = term_rules.sql_rows
_number = term_rules.number
