"""/clients: scheduler nodes registered by freezer-scheduler."""

from freezer_api.api import resource
from freezer_api.core.clients import wants_central
from freezer_api.core.clients import with_capabilities


class _ClientShape:
    def present(self, req, doc):
        return with_capabilities(doc)


class ClientCollection(_ClientShape, resource.Collection):
    noun, id_field = 'clients', 'client_id'
    policies = {'GET': 'clients:get_all', 'POST': 'clients:create'}

    def on_post(self, req, resp):
        body = self.body(req)
        if wants_central(body):
            self.require(req, 'clients:create_central',
                         'You are not allowed to register a central '
                         'scheduler')
        self.create(req, resp, body)


class ClientItem(_ClientShape, resource.Item):
    noun, id_field = 'clients', 'client_id'
    policies = {'GET': 'clients:get', 'PATCH': 'clients:update',
                'DELETE': 'clients:delete'}
