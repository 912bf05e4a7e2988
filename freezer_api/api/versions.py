"""Public documents: API versions, JSON home and the health check."""

import json
import os

import falcon

from freezer_api.api.resource import ANY_CALLER
from freezer_api.api.resource import Resource

V1 = {'id': 'v1', 'status': 'DEPRECATED', 'updated': '2018-02-21T13:30:00'}
V2 = {'id': 'v2', 'status': 'CURRENT', 'updated': '2018-02-21T13:30:00'}

JSON_HOME = 'application/json-home'
HEALTHCHECK_DISABLE_FILE = '/etc/freezer/healthcheck_disable'


class Versions(Resource):
    """``GET /``: 300 with the enabled versions, v2 first (spec D1)."""

    public = True

    def on_get(self, req, resp):
        base = req.prefix.rstrip('/') + '/'
        versions = []
        for enabled, entry in ((self.conf.api.enable_v2_api, V2),
                               (self.conf.api.enable_v1_api, V1)):
            if enabled:
                # NOTE: a new dict per request, so no caller's host leaks
                # into another's answer (upstream bug §9.14).
                versions.append({**entry, 'links': [
                    {'href': f'{base}{entry["id"]}/', 'rel': 'self'}]})
        resp.status = falcon.HTTP_300
        resp.media = {'versions': versions}

    on_head = on_get


class HomeDocument(Resource):
    """``GET /v1`` and ``GET /v2``: JSON home of the version."""

    media_type = JSON_HOME

    policies = {'GET': ANY_CALLER}

    def __init__(self, services, conf, prefix):
        super().__init__(services, conf)
        self.prefix = prefix

    def on_get(self, req, resp):
        href_vars = {'backup_id': 'param/backup_id'}
        if '{project_id}' in self.prefix:
            href_vars['project_id'] = 'param/project_id'
        resp.content_type = JSON_HOME
        resp.text = json.dumps({'resources': {'rel/backups': {
            'href-template': self.prefix + '/backups/{backup_id}',
            'href-vars': href_vars,
            'hints': {'allow': ['GET'],
                      'formats': {'application/json': {}}}}}}, indent=4)


class Health(Resource):
    """``GET /healthcheck``: 200 OK while the store answers, else 503."""

    public = True
    media_type = falcon.MEDIA_TEXT

    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        if os.path.exists(HEALTHCHECK_DISABLE_FILE):
            resp.status = falcon.HTTP_503
            resp.text = 'DISABLED BY FILE'
            return
        self.services.storage.ping()
        resp.text = 'OK'

    on_head = on_get
