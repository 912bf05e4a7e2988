"""Drive python-freezerclient for a test, from the clients' virtualenv.

Run by that virtualenv's python (``tests.clients.helpers.LibraryClient``
starts it; the test process never imports freezerclient). Protocol, one
JSON document per line:

* first line on stdin: ``{"auth": {keystoneauth password options},
  "endpoint": null or a URL, "endpoint_type": null or an interface}``;
  a ``freezerclient.v2.client.Client`` is built on a keystoneauth session;
* then each line is a request ``{"path": "jobs.create", "call": true,
  "args": [...], "kwargs": {...}}`` (``"call": false`` reads an attribute
  such as ``client_id``), answered on stdout by ``{"result": ...}`` or
  ``{"error": {"type", "message", "status_code"}}``.

Anything the library prints goes to stderr, never into the answers.
"""

import json
import os
import sys


def describe(error):
    return {'type': type(error).__name__, 'message': str(error),
            'status_code': getattr(error, 'status_code', None)}


def main():
    answers = os.fdopen(os.dup(sys.stdout.fileno()), 'w')
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def answer(document):
        answers.write(json.dumps(document) + '\n')
        answers.flush()

    config = json.loads(sys.stdin.readline())
    try:
        from freezerclient.v2 import client as v2_client
        from keystoneauth1 import loading
        from keystoneauth1 import session

        auth = loading.get_plugin_loader('password').load_from_options(
            **config['auth'])
        client = v2_client.Client(session=session.Session(auth=auth),
                                  endpoint=config.get('endpoint'),
                                  endpoint_type=config.get('endpoint_type'))
    except Exception as error:
        answer({'error': describe(error)})
        return 1
    answer({'result': 'ready'})

    for line in sys.stdin:
        request = json.loads(line)
        try:
            target = client
            for name in request['path'].split('.'):
                target = getattr(target, name)
            if request.get('call', True):
                target = target(*request.get('args', ()),
                                **request.get('kwargs', {}))
            answer({'result': target})
        except Exception as error:
            answer({'error': describe(error)})
    return 0


if __name__ == '__main__':
    sys.exit(main())
