"""/clients: scheduler nodes registered by freezer-scheduler."""

from freezer_api.api import resource


class ClientCollection(resource.Collection):
    noun, id_field = 'clients', 'client_id'
    policies = {'GET': 'clients:get_all', 'POST': 'clients:create'}


class ClientItem(resource.Item):
    noun, id_field = 'clients', 'client_id'
    policies = {'GET': 'clients:get', 'PATCH': 'clients:update',
                'DELETE': 'clients:delete'}
