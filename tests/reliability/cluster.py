"""Several real freezer-api processes on one store, for the reliability
tests: start them, kill one with SIGKILL, start it again, stop them all
(also when the test fails)."""

import os
import signal
import textwrap

from freezer_api.cmd import manage
from tests.fixtures import servers


# NOTE: seconds an API process waits for Elasticsearch. On a loaded test
# machine the node can stall for more than 5 s; the API then rightly
# answers 503, but a write's outcome becomes unknown and the soak cannot
# tell what must be stored. The outage tests need no short timeout: a
# stopped node refuses connections at once.
ES_TIMEOUT = 30


class Cluster:
    """``count`` API processes sharing one store.

    ``store`` is ``('sql', url)`` or ``('elasticsearch', hosts_url,
    index)``.
    """

    def __init__(self, tmp_path, store, count=2):
        self.tmp_path = tmp_path
        self.store = store
        self.configs = []
        self.servers = []
        if store[0] == 'sql':
            connection, extra = store[1], ''
        else:
            connection = f'sqlite:///{tmp_path}/unused.sqlite'
            extra = textwrap.dedent(f"""
                [storage]
                driver = elasticsearch

                [elasticsearch]
                hosts = {store[1]}
                index = {store[2]}
                timeout = {ES_TIMEOUT}
                """)
        for n in range(count):
            port = servers.free_port()
            self.configs.append((port, servers.write_config(
                tmp_path / f'api{n}.conf', connection, port=port,
                extra=extra)))
        assert manage.main(['--config-file', str(self.configs[0][1]), 'db',
                            'sync', '-y']) == 0
        try:
            # started together, then waited for: they load in parallel
            for n in range(count):
                self.servers.append(self._spawn(n))
            for server in self.servers:
                server.wait_ready()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, n, generation=0):
        port, config = self.configs[n]
        argv = [os.path.join(servers.BIN, 'freezer-api'), '--config-file',
                str(config)]
        return servers.Server(argv, f'http://127.0.0.1:{port}',
                              servers.clean_env(self.tmp_path),
                              self.tmp_path / f'api{n}-{generation}.log')

    def _start(self, n, generation=0):
        port, config = self.configs[n]
        return servers.start_freezer_api(
            self.tmp_path, ['--config-file', str(config)], port=port,
            name=f'api{n}-{generation}')

    @property
    def urls(self):
        return [server.url for server in self.servers]

    def kill9(self, n):
        """SIGKILL process ``n``: no cleanup, no last words."""
        process = self.servers[n].process
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        return process.returncode

    def restart(self, n, generation=1):
        self.servers[n].stop()
        self.servers[n] = self._start(n, generation)

    def logs(self):
        return '\n'.join(server.log() for server in self.servers)

    def stop(self):
        for server in self.servers:
            server.stop()
