"""The resources of the API, generic over the kind of document.

Each noun module subclasses ``Collection`` and ``Item`` (Falcon's
collection/item pair), naming its manager, its id field and the policy rule
of each method. Responders only parse, call the core and render.
"""

import itertools
import json

import falcon

from freezer_api.api import errors
from freezer_api.api import request


# The rule of a responder any identified caller may use, with no policy
# check (the JSON home documents). It must be named: a responder missing
# from ``policies`` is denied.
ANY_CALLER = '@any-identified-caller'


# Pages whose JSON is larger than this are streamed (see stream_list).
SMALL_PAGE = 256 * 1024


def stream_list(noun, records, present):
    """Yield the JSON of ``{noun: [present(doc), ...]}`` one document at a
    time.

    PERF: a page of large documents is never held twice: each document
    is serialized when the server is ready to send it, and let go of
    once sent (``records`` is consumed). Rendering the page as one
    ``resp.media`` took a worker from 86 to 322 MB for 60 documents of
    1 MiB (doc/reliability.rst). A page is always whole: nothing is cut
    to save memory, so a short page still means the end of the list.
    """
    records.reverse()
    yield b'{"' + noun.encode() + b'": ['
    separator = b''
    while records:
        doc = present(records.pop().doc)
        yield separator + json.dumps(doc, ensure_ascii=False).encode()
        separator = b', '
    yield b']}'


class Resource:
    """Base resource: holds the core services and request limits.

    ``policies`` maps an HTTP method to the oslo.policy rule that
    ``middleware.CallerScope`` checks before the responder runs (or to
    ``ANY_CALLER``); a responder without an entry is denied.
    """

    policies: dict[str, str] = {}
    public = False

    def __init__(self, services, conf):
        self.services = services
        self.conf = conf
        self.max_body = conf.api.max_request_body_size

    def body(self, req, empty=None):
        """The JSON body; ``empty`` when the request has none."""
        return request.read_json(req, self.max_body, empty)

    @staticmethod
    def require(req, rule, description):
        """403 unless ``rule`` allows the caller on the URL's project: for
        what a request asks beyond its method (all_projects, is_central)."""
        target = {'project_id': req.context.caller.scope.project_id}
        if not req.context.enforcer.enforce(rule, target,
                                            req.context.identity):
            raise errors.forbidden(description)


class DocumentResource(Resource):
    """A resource over one manager of ``services``."""

    noun = ''       # the manager's name, also the list wrapper key
    id_field = ''   # e.g. job_id

    @property
    def manager(self):
        return getattr(self.services, self.noun)

    def present(self, req, doc):
        """The stored document as this request's API version shows it."""
        return doc

    def render_write(self, resp, record, status=falcon.HTTP_200):
        resp.status = status
        resp.media = {self.id_field: record.id, 'version': record.version}
        resp.etag = f'"{record.version}"'


class Collection(DocumentResource):
    """``GET`` lists (search document as body), ``POST`` creates."""

    def on_get(self, req, resp):
        self.render_list(req, resp, req.context.caller)

    def render_list(self, req, resp, caller):
        records = self.manager.list(caller, self.body(req),
                                    request.page(req))
        resp.content_type = falcon.MEDIA_JSON
        chunks = stream_list(self.noun, list(records),
                             lambda doc: self.present(req, doc))
        # NOTE: a small page goes out whole, with its Content-Length (a
        # client may keep the connection); a larger one is streamed.
        head, size = [], 0
        for chunk in chunks:
            head.append(chunk)
            size += len(chunk)
            if size > SMALL_PAGE:
                resp.stream = itertools.chain(head, chunks)
                return
        resp.data = b''.join(head)

    def on_post(self, req, resp):
        self.create(req, resp, self.body(req))

    def create(self, req, resp, body):
        doc_id = self.manager.create(req.context.caller, body)
        resp.status = falcon.HTTP_201
        resp.media = {self.id_field: doc_id}


class Item(DocumentResource):
    """``GET``, ``PATCH`` (deep merge) and ``DELETE`` one document."""

    def on_get(self, req, resp, **ids):
        record = self.manager.get(req.context.caller, self._id(ids))
        resp.media = {**self.present(req, record.doc),
                      '_version': record.version}
        resp.etag = f'"{record.version}"'

    def on_patch(self, req, resp, **ids):
        # NOTE: a PATCH without a body is an empty patch (spec §1.1).
        record = self.manager.update(
            req.context.caller, self._id(ids), self.body(req, empty={}),
            request.expected_version(req))
        self.render_write(resp, record)

    def on_delete(self, req, resp, **ids):
        self.manager.delete(req.context.caller, self._id(ids))
        resp.status = falcon.HTTP_204

    def _id(self, ids):
        return ids[self.id_field]


class ReplaceableItem(Item):
    """Adds ``POST`` on the item: create or replace with the given id."""

    def on_post(self, req, resp, **ids):
        record = self.manager.replace(
            req.context.caller, self._id(ids), self.body(req),
            request.expected_version(req))
        self.render_write(resp, record, falcon.HTTP_201)
