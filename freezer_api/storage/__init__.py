"""Storage drivers and the interface they share."""

from typing import cast

from stevedore import driver as stevedore_driver

from freezer_api.storage.base import KINDS
from freezer_api.storage.base import Record
from freezer_api.storage.base import Scope
from freezer_api.storage.base import StorageDriver
from freezer_api.storage.errors import Conflict
from freezer_api.storage.errors import NotFound
from freezer_api.storage.errors import StorageError
from freezer_api.storage.errors import Unavailable
from freezer_api.storage.query import Query
from freezer_api.storage.query import Range
from freezer_api.storage.query import Term

__all__ = ['KINDS', 'Record', 'Scope', 'StorageDriver', 'Conflict',
           'NotFound', 'StorageError', 'Unavailable', 'Query', 'Range',
           'Term', 'DRIVER_NAMESPACE', 'load_driver']

DRIVER_NAMESPACE = 'freezer_api.storage.drivers'


def load_driver(conf, prepare=True) -> StorageDriver:
    """Instantiate the driver named by ``[storage] driver``.

    With ``prepare``, an embedded store (the default SQLite file) gets its
    schema created or upgraded, so a fresh install works at once.
    """
    manager: stevedore_driver.DriverManager[StorageDriver] = (
        stevedore_driver.DriverManager(
            DRIVER_NAMESPACE, conf.storage.driver, invoke_on_load=True,
            invoke_args=(conf,)))
    # invoke_on_load: .driver is the driver, not its factory
    driver = cast(StorageDriver, manager.driver)
    if prepare and driver.embedded:
        driver.upgrade_schema()
    return driver
