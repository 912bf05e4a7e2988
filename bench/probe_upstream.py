"""Upstream at sizes too large for a load run: a few timed requests.

    python -m bench.probe_upstream 100000 1000000

Upstream's SQL search reads every row of the owner into Python for each
list with a search body, so at these sizes one request takes seconds or
more: it gets sequential requests (each bounded by a timeout) instead of
wrk, and the worker's RSS is read after them. Results go to
``bench/results/upstream-probe.json``.
"""

import json
import os
import sys
import tempfile
import time

from bench import data
from bench import deploy
from bench import scale


def main(argv):
    levels = [int(n) for n in argv] or [100000, 1000000]
    timeout = int(os.environ.get('FREEZER_BENCH_PROBE_TIMEOUT', '300'))
    from tests.fixtures import servers
    out = {'date': time.strftime('%Y-%m-%dT%H:%M:%S'), 'levels': {}}
    with tempfile.TemporaryDirectory(prefix='freezer-probe-') as workdir:
        where = {'connection': f'sqlite:///{workdir}/upstream.sqlite'}
        service = deploy.start_upstream(workdir, servers.free_port(),
                                        where['connection'])
        try:
            ids = data.fill(service.url)
            for level in levels:
                started = time.monotonic()
                scale.grow('sqlite', 'upstream', where, level)
                grown = time.monotonic() - started
                probe = scale.probe_upstream(service, ids, timeout)
                probe['generated_in_s'] = round(grown, 1)
                out['levels'][level] = probe
                print(level, probe, flush=True)
        finally:
            service.stop()
    path = os.path.join(deploy.HERE, 'results', 'upstream-probe.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        json.dump(out, handle, indent=1)


if __name__ == '__main__':
    main(sys.argv[1:])
