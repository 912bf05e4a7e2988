"""What every resource manager shares: owner, paging and body rules."""

from collections.abc import Callable
import dataclasses
import time
import uuid

from freezer_api.core import schemas
from freezer_api.core import search
from freezer_api.core.errors import Conflict
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import NotFound
from freezer_api.core.errors import PreconditionFailed
from freezer_api.core.merge import deep_merge
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import Scope

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000

# Fields only the server sets. Old schedulers send whole documents back, so
# these are dropped from bodies instead of being rejected (spec D6).
SERVER_FIELDS = ('user_id', 'project_id', 'user_name', '_version')


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who a new document belongs to."""

    project_id: str
    user_id: str
    user_name: str = ''


@dataclasses.dataclass(frozen=True)
class Caller:
    """Whose request this is: the documents it reaches, and who owns what
    it creates."""

    scope: Scope
    owner: Owner
    # The caller's Keystone token, for work done on its behalf (trusts).
    auth_token: str | None = dataclasses.field(default=None, repr=False,
                                               compare=False)
    # ``allows(rule)``: whether policy grants the caller ``rule`` on its
    # project, for what a rule depends on beyond the route (a job aimed at
    # a central scheduler). Denies everything unless the API says more.
    allows: Callable[[str], bool] = dataclasses.field(
        default=lambda rule: False, repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self):
        if (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                or not 1 <= self.limit <= MAX_LIMIT):
            raise InvalidInput(
                f'limit must be an integer from 1 to {MAX_LIMIT}')
        if (isinstance(self.offset, bool) or not isinstance(self.offset, int)
                or self.offset < 0):
            raise InvalidInput('offset must be an integer of 0 or more')


def new_hex_id():
    return uuid.uuid4().hex


def require_object(body, what='request body'):
    if body is None:
        raise InvalidInput('Missing request body')
    if not isinstance(body, dict):
        raise InvalidInput(f'The {what} must be a JSON object')
    return body


def without(body: dict, fields) -> dict:
    return {k: v for k, v in body.items() if k not in fields}


def check_version(record, expected_version):
    if expected_version is not None and record.version != expected_version:
        raise PreconditionFailed(
            f'Version {expected_version} does not match the stored '
            f'version {record.version}')


def project_scope(scope: Scope) -> Scope:
    """The scope used to follow links between documents of one project."""
    return Scope(scope.project_id)


class Manager:
    """Base of the resource managers.

    :param storage: a ``StorageDriver``.
    :param clock: returns the time in seconds (``time.time`` by default).
    :param new_id: returns a fresh document id (uuid4 hex by default).
    """

    kind = ''
    not_found = 'No document found with ID {}'

    def __init__(self, storage, clock=time.time, new_id=new_hex_id):
        self.storage = storage
        self.clock = clock
        self.new_id = new_id

    def now(self) -> int:
        return int(self.clock())

    def created_at(self) -> int:
        return int(self.clock() * 1_000_000)

    def missing(self, doc_id):
        return NotFound(self.not_found.format(doc_id))

    def get(self, caller, doc_id):
        try:
            return self.storage.get(self.kind, doc_id, caller.scope)
        except storage_errors.NotFound:
            raise self.missing(doc_id)

    def list(self, caller, search_doc, page: Page):
        query = search.parse(search_doc, self.kind)
        return self.storage.list(self.kind, caller.scope, query, page.limit,
                                 page.offset)

    def delete(self, caller, doc_id):
        try:
            self.storage.delete(self.kind, doc_id, caller.scope)
        except storage_errors.NotFound:
            raise self.missing(doc_id)

    def merge(self, caller, doc_id, patch, schema: dict,
              expected_version=None, finish=None):
        """Deep-merge ``patch`` into a document atomically (spec D6).

        The merged document must satisfy ``schema``; ``finish(txn,
        doc, old)`` (``old``: the document before) may add work to the
        same transaction. A patch that changes
        nothing writes nothing.
        """
        def write(txn):
            record = self.load(txn, caller.scope, doc_id, expected_version)
            doc = deep_merge(record.doc, patch)
            schemas.validate(schema, doc)
            if finish is not None:
                finish(txn, doc, record.doc)
            if doc == record.doc:
                return record  # nothing changes, not even the version
            return txn.update(record, doc)

        return self.storage.atomic(write)

    def upsert(self, caller, doc_id, new_doc, replacement,
               expected_version=None):
        """Create ``doc_id`` or replace it, atomically (POST on an item).

        ``new_doc(txn)`` builds the document when none exists in the
        caller's scope; ``replacement(txn, record)`` builds the one that
        replaces ``record``. Both run inside the transaction.
        """
        noun = self.kind[:-1].capitalize()

        def write(txn):
            record = txn.get(self.kind, doc_id, caller.scope)
            if record is None:
                if expected_version is not None:
                    raise PreconditionFailed(f'{noun} {doc_id} does not exist')
                owner = caller.owner
                return txn.insert(self.kind, doc_id, owner.project_id,
                                  owner.user_id, self.created_at(),
                                  new_doc(txn))
            check_version(record, expected_version)
            return txn.update(record, replacement(txn, record))

        try:
            return self.storage.atomic(write)
        except storage_errors.Conflict:
            # the id exists outside the caller's scope
            raise Conflict(f'{noun} ID {doc_id} is already in use')

    def load(self, txn, scope, doc_id, expected_version=None):
        """Read a document inside a transaction, or raise NotFound."""
        record = txn.get(self.kind, doc_id, scope)
        if record is None:
            raise self.missing(doc_id)
        check_version(record, expected_version)
        return record


def check_id(doc_id, what):
    if not isinstance(doc_id, str) or not doc_id or len(doc_id) > 255 or (
            not all(c.isalnum() or c in '_-' for c in doc_id)):
        raise InvalidInput(
            f'{what} must be letters, digits, "_" or "-" (at most 255)')
    return doc_id
