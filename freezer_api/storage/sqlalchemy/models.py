"""Tables of the SQLAlchemy storage driver.

Each kind of document lives in its own table, the document kept as JSON text
next to the columns the driver filters and orders on. A companion table
``<kind>_terms`` is the inverted index the search runs on: one row per
distinct scalar leaf of the document (see ``storage.query.leaves``).

This module describes the schema as of the newest migration; the migrations
in ``migrations/versions`` create it and must be kept in step with it.
"""

import hashlib
from json import encoder as json_encoder

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from freezer_api.storage import base
from freezer_api.storage import query as q

__all__ = ['metadata', 'documents', 'terms', 'ID_LENGTH', 'OWNER_LENGTH',
           'INDEX_LENGTH', 'index_form', 'value_form', 'term_rows']

# Column sizes. Keystone ids are 32-64 characters; ids chosen by the core
# (uuids, client ids) fit in 255. Together they stay inside MySQL's
# 3072-byte index limit with utf8mb4.
ID_LENGTH = 255
OWNER_LENGTH = 128
# Longest key, path or value text stored as is in the index; longer ones are
# replaced by a digest of fixed size so that equality stays exact.
INDEX_LENGTH = 200

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


def _digest(text):
    return '#' + hashlib.sha256(text.encode('utf-8')).hexdigest()


def index_form(name):
    """Return how a key or a path is stored in the index.

    Names longer than ``INDEX_LENGTH`` become a digest. Names that already
    start with ``#`` are digested too, so a stored name that looks like a
    digest is always one.
    """
    # NOTE: PostgreSQL text cannot hold NUL; a digest keeps such names exact.
    if len(name) > INDEX_LENGTH or name.startswith('#') or '\x00' in name:
        return _digest(name)
    return name


def text_form(value):
    """Return the ``text`` column of a scalar (for ``_all`` searches).

    NUL, which PostgreSQL text cannot hold, is stored as U+FFFD, and the
    driver rewrites needles the same way.
    """
    text = q.text_of(value)
    return None if text is None else text.replace('\x00', '\ufffd')


def value_form(value):
    """Return how a scalar is stored in the index's ``value`` column.

    The canonical JSON text, or for long ones a digest of it. Canonical JSON
    never starts with ``#``, so the two forms cannot collide.
    """
    text = q.canonical(value)
    if len(text) > INDEX_LENGTH:
        return _digest(text)
    return text


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if number != number:  # NaN never satisfies a range
        return None
    return number


def _scalar_forms(value):
    """(value, num, text) columns of one scalar; the hot cases first."""
    if isinstance(value, str):
        text = _json_string(value)
        if len(text) > INDEX_LENGTH:
            text = _digest(text)
        return text, None, value.lower().replace('\x00', '\ufffd')
    if value is None:
        return 'null', None, None
    if value is True or value is False:
        return ('true', None, 'true') if value else ('false', None, 'false')
    if type(value) is int and -_EXACT_INT < value < _EXACT_INT:
        text = str(value)
        return text, float(value), text
    return value_form(value), _number(value), text_form(value)


# json.dumps(value, ensure_ascii=False) of a str, without its dispatch
_json_string = json_encoder.encode_basestring

# Integers this small convert to text and float exactly and quickly.
_EXACT_INT = 2 ** 53


def term_rows(doc_pk, doc):
    """Return the index rows of one document, without duplicates.

    The rows of ``storage.query.leaves``, in its order.

    PERF: every write computes them (twice for an update); this walks the
    document once without generators and converts each scalar through
    the cheapest exact path.
    """
    rows = []
    seen = set()
    forms: dict = {}
    # (path, key, node); lists keep the path and key of their parent
    stack = [('', '', doc)]
    while stack:
        path, key, node = stack.pop()
        if isinstance(node, dict):
            children = []
            for name, value in node.items():
                name = str(name)
                children.append((f'{path}.{name}' if path else name, name,
                                 value))
            stack.extend(reversed(children))
            continue
        if isinstance(node, list):
            stack.extend((path, key, item) for item in reversed(node))
            continue
        if not path:
            continue
        # NOTE: by type too, or 1, 1.0 and True would share forms
        scalar = (type(node), node)
        try:
            value, num, text = forms[scalar]
        except KeyError:
            value, num, text = forms[scalar] = _scalar_forms(node)
        marker = (path, key, value)
        if marker in seen:
            continue
        seen.add(marker)
        rows.append({
            'doc_pk': doc_pk,
            'path': path if _plain_name(path) else index_form(path),
            'key': key if _plain_name(key) else index_form(key),
            'value': value,
            'num': num,
            'text': text,
        })
    return rows


def _plain_name(name):
    """True when ``index_form(name)`` is ``name`` itself."""
    return (len(name) <= INDEX_LENGTH and name[:1] != '#'
            and '\x00' not in name)
