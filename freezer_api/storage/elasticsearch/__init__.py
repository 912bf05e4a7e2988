"""Elasticsearch storage driver (``[storage] driver = elasticsearch``).

Needs the ``elasticsearch`` Python client of major version 8 (the
``elasticsearch`` extra) and an Elasticsearch 8 cluster; the index is
created with ``freezer-manage db sync``.
"""
