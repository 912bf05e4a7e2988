"""Registered scheduler nodes (spec §2.2, D12), central ones included.

A central client (``is_central: true``, registered by an admin) is a
freezer-scheduler that runs the jobs of every project. When central
scheduling is enabled, such clients are visible to every project, so that
jobs can be aimed at them.
"""

from freezer_api.core import base
from freezer_api.core import schemas
from freezer_api.core import search
from freezer_api.core.errors import Conflict
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import NotFound
from freezer_api.storage import errors as storage_errors
from freezer_api.storage.base import Scope
from freezer_api.storage.query import Query
from freezer_api.storage.query import Term

CENTRAL = Term('client.is_central', True)


def _unwrap(body):
    # NOTE: the API takes client_info bare, but a client that read a stored
    # document may send it back wrapped in "client"; accept both.
    if set(body) == {'client'} and isinstance(body['client'], dict):
        return body['client']
    return body


def wants_central(body) -> bool:
    """Whether a registration body asks for a central client."""
    return (isinstance(body, dict)
            and _unwrap(body).get('is_central') is True)


def is_central(record) -> bool:
    return record is not None and record.doc.get('client', {}).get(
        'is_central') is True


# NOTE: a central scheduler holds the service user's credentials and runs
# every project's jobs. Registered without an actions list, it runs every
# action but ``exec`` (an admin adds exec on purpose, by PATCH), and even
# then a project's exec job needs the jobs:create_central_exec rule.
CENTRAL_DEFAULT_ACTIONS = [action for action in
                           schemas.SUPPORTED['supported_actions']
                           if action != 'exec']


def default_capabilities(info: dict) -> dict:
    """The supported_* lists a client has when registered without them.

    Every client document shows the four lists (as upstream's SQL store
    did): the full lists, except that a central client does not run
    ``exec`` unless its lists say so.
    """
    defaults = {name: list(values)
                for name, values in schemas.SUPPORTED.items()}
    if info.get('is_central') is True:
        defaults['supported_actions'] = list(CENTRAL_DEFAULT_ACTIONS)
    return defaults


def with_capabilities(doc: dict) -> dict:
    """A client document with its four supported_* lists (documents
    stored before the lists were filled in get the defaults)."""
    info = doc.get('client')
    if not isinstance(info, dict) or all(
            name in info for name in schemas.SUPPORTED):
        return doc
    return {**doc, 'client': {**default_capabilities(info), **info}}


class ClientManager(base.Manager):
    kind = 'clients'
    not_found = 'No client found with ID {}'

    def __init__(self, storage, central_enabled=False, **kwargs):
        super().__init__(storage, **kwargs)
        self.central_enabled = central_enabled

    def create(self, caller: base.Caller, body) -> str:
        """Register a client; its ``client_id`` is unique in the project."""
        info = base.without(_unwrap(base.require_object(body)),
                            base.SERVER_FIELDS)
        schemas.validate(schemas.CLIENT, info)
        if info.get('is_central') and not self.central_enabled:
            raise InvalidInput(
                'Central schedulers are not enabled on this service '
                '([centralized_scheduler] enabled = false)')
        info.setdefault('uuid', self.new_id())
        info = {**default_capabilities(info), **info}
        client_id = info['client_id']
        owner = caller.owner
        doc = {'client': info, 'user_id': owner.user_id,
               'project_id': owner.project_id}
        try:
            self.storage.create(self.kind, client_id, owner.project_id,
                                owner.user_id, self.created_at(), doc)
        except storage_errors.Conflict:
            raise Conflict(f'Client already registered with ID {client_id}')
        return client_id

    def update(self, caller, client_id, body, expected_version=None):
        """Change hostname, description or the supported_* lists."""
        # NOTE: ids are ignored, not refused, as in every PATCH (spec D6).
        patch = base.without(_unwrap(base.require_object(body)),
                             ('client_id', 'uuid') + base.SERVER_FIELDS)
        schemas.validate(schemas.CLIENT_PATCH, patch)

        def change(txn):
            record = self.load(txn, caller.scope, client_id,
                               expected_version)
            doc = dict(record.doc)
            doc['client'] = {**doc['client'], **patch}
            if doc == record.doc:
                return record  # nothing changes, not even the version
            return txn.update(record, doc)

        return self.storage.atomic(change)

    # -- central clients ---------------------------------------------------

    def find_central(self, client_id):
        """The central client ``client_id`` of any project, or None."""
        if not self.central_enabled:
            return None
        query = Query(match=(Term('client.client_id', client_id), CENTRAL))
        found = self.storage.list(self.kind, Scope(None), query, 1, 0)
        return found[0] if found else None

    def _central(self, query, exclude: Scope):
        """Every central client matching ``query`` outside ``exclude``.

        NOTE: central schedulers are a handful per cloud, so they are read
        whole, in pages, to put them in front of the caller's own clients.
        """
        query = Query(match=query.match + (CENTRAL,),
                      match_not=query.match_not, text=query.text,
                      ranges=query.ranges)
        found, offset = [], 0
        while True:
            batch = self.storage.list(self.kind, Scope(None), query,
                                      base.MAX_LIMIT, offset)
            found += [r for r in batch
                      if not exclude.contains(r.project_id, r.user_id)]
            if len(batch) < base.MAX_LIMIT:
                return found
            offset += len(batch)

    def get(self, caller, client_id):
        try:
            return super().get(caller, client_id)
        except NotFound:
            central = self.find_central(client_id)
            if central is None:
                raise
            return central

    def list(self, caller, search_doc, page: base.Page):
        """The caller's clients, after the central ones when enabled."""
        if not self.central_enabled:
            return super().list(caller, search_doc, page)
        query = search.parse(search_doc, self.kind)
        central = self._central(query, caller.scope)
        head = central[page.offset:page.offset + page.limit]
        wanted = page.limit - len(head)
        if not wanted:
            return head
        own = self.storage.list(self.kind, caller.scope, query, wanted,
                                max(0, page.offset - len(central)))
        return head + own
