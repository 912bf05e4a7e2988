"""What every Falcon resource of the API shares."""

import falcon

from freezer_api.api import request


class Resource:
    """Base resource: holds the core services and request limits.

    Subclasses declare ``policies``, the oslo.policy rule checked for each
    HTTP method by ``middleware.CallerScope`` before the responder runs.
    """

    policies: dict[str, str] = {}
    public = False

    def __init__(self, services, conf):
        self.services = services
        self.conf = conf
        self.max_body = conf.api.max_request_body_size

    def body(self, req):
        return request.read_json(req, self.max_body)

    @staticmethod
    def render_document(resp, record):
        """A single document, with its version (spec D7)."""
        resp.media = {**record.doc, '_version': record.version}
        resp.etag = f'"{record.version}"'

    @staticmethod
    def render_list(resp, key, records):
        resp.media = {key: [record.doc for record in records]}

    @staticmethod
    def render_write(resp, id_field, record, status=falcon.HTTP_200):
        resp.status = status
        resp.media = {id_field: record.id, 'version': record.version}
        resp.etag = f'"{record.version}"'
