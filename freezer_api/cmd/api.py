"""``freezer-api``: serve the API with a small threaded WSGI server.

For production, run the WSGI application under uwsgi or mod_wsgi
(``freezer_api.cmd.wsgi:application``).
"""

import logging
import socketserver
import sys
from wsgiref import simple_server

from freezer_api import bootstrap
from freezer_api.cmd import common

LOG = logging.getLogger(__name__)


class ThreadingWSGIServer(socketserver.ThreadingMixIn,
                          simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):
        LOG.info('%s %s', self.address_string(), format % args)


def main(argv=None):
    conf = common.load_config(sys.argv[1:] if argv is None else argv)
    application = bootstrap.load_application(conf)
    common.freeze_startup_objects()
    server = simple_server.make_server(
        conf.bind_host, conf.bind_port, application,
        server_class=ThreadingWSGIServer, handler_class=QuietHandler)
    LOG.info('freezer-api listening on http://%s:%s/', conf.bind_host,
             server.server_port)
    print(f'freezer-api listening on http://{conf.bind_host}:'
          f'{server.server_port}/', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print('freezer-api stopped.')
    finally:
        server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
