"""/actions: reusable action definitions (the web UI builds jobs of them)."""

from freezer_api.api import resource


class ActionCollection(resource.Collection):
    noun, id_field = 'actions', 'action_id'
    policies = {'GET': 'actions:get_all', 'POST': 'actions:create'}


class ActionItem(resource.ReplaceableItem):
    noun, id_field = 'actions', 'action_id'
    policies = {'GET': 'actions:get', 'POST': 'actions:replace',
                'PATCH': 'actions:update', 'DELETE': 'actions:delete'}
