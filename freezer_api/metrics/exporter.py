"""Everything a scrape answers, as the Prometheus text format."""

import os

from prometheus_client import CollectorRegistry
from prometheus_client import exposition

from freezer_api.metrics import archive
from freezer_api.metrics import figures
from freezer_api.metrics import instruments
from freezer_api.metrics import store

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST
STORE_FIGURES_FILE = 'store-figures.json'


class _Traffic:
    """The summed files of every process (see ``archive``)."""

    def __init__(self, directory):
        self.directory = directory

    def collect(self):
        return self.directory.collect()


class Exporter:
    """This process's instruments and the collectors of one service."""

    def __init__(self, directory, storage, cache_seconds, health=()):
        self.instruments = instruments.for_directory(directory)
        self.directory = archive.Directory(self.instruments.directory)
        # NOTE: no auto_describe: registering must not read the store.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Traffic(self.directory))
        self.registry.register(store.StoreFigures(
            storage, cache_seconds, shared_file=os.path.join(
                self.instruments.directory, STORE_FIGURES_FILE)))
        self.registry.register(figures.HealthFigures(storage, health))

    def render(self) -> bytes:
        return exposition.generate_latest(self.registry)
