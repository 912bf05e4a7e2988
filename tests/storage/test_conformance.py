"""Every registered storage driver implements the whole interface."""

import configparser
import importlib
import inspect
import os
from importlib import metadata

from freezer_api import storage
from freezer_api.storage import base

SETUP_CFG = os.path.join(os.path.dirname(__file__), '..', '..', 'setup.cfg')


def declared_entry_points():
    """Entry points of the driver namespace, as setup.cfg declares them."""
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    text = parser.get('options.entry_points', storage.DRIVER_NAMESPACE,
                      fallback='')
    points = {}
    for line in text.splitlines():
        if '=' in line:
            name, target = (part.strip() for part in line.split('=', 1))
            points[name] = target
    return points


def installed_entry_points():
    return {ep.name: ep.value
            for ep in metadata.entry_points(group=storage.DRIVER_NAMESPACE)}


def load(target):
    module, _, attr = target.partition(':')
    obj = importlib.import_module(module.strip())
    for part in attr.strip().split('.'):
        obj = getattr(obj, part)
    return obj


def test_sqlalchemy_driver_is_registered():
    declared = declared_entry_points()
    assert declared.get('sqlalchemy') == (
        'freezer_api.storage.sqlalchemy.driver:SQLAlchemyDriver')
    installed = installed_entry_points()
    # Installed metadata (pip install -e .) must agree with setup.cfg.
    for name, target in installed.items():
        if name in declared:
            assert target == declared[name], name


def test_every_driver_implements_the_interface():
    points = {**installed_entry_points(), **declared_entry_points()}
    assert points, 'no storage driver is registered'
    problems = []
    for name, target in sorted(points.items()):
        try:
            cls = load(target)
        except Exception as exc:  # reported below
            problems.append(f'{name}: cannot load {target}: {exc!r}')
            continue
        if not (inspect.isclass(cls) and issubclass(cls, base.StorageDriver)):
            problems.append(f'{name}: {target} is not a StorageDriver')
            continue
        if inspect.isabstract(cls) or cls.__abstractmethods__:
            problems.append(f'{name}: abstract methods left: '
                            f'{sorted(cls.__abstractmethods__)}')
    assert problems == []
